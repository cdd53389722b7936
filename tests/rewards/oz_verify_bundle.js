// Cross-check helper for tests/rewards/test_rewards_merkle_js.py: for each case, load the
// reward tree dump and rebuild it from its values with @openzeppelin/merkle-tree, and verify
// each claim bundle with StandardMerkleTree.verify(root, leafEncoding, value, proof).
// Input (stdin): {"cases": [{"dump": {...}, "bundles": [bundle, ...]}]}
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const input = JSON.parse(require('fs').readFileSync(0, 'utf-8'));
const out = input.cases.map(c => {
  const loaded = StandardMerkleTree.load(c.dump);
  loaded.validate();
  const rebuilt = StandardMerkleTree.of(c.dump.values.map(v => v.value), c.dump.leafEncoding);
  return {
    loadedRoot: loaded.root,
    rebuiltRoot: rebuilt.root,
    verified: c.bundles.map(b => StandardMerkleTree.verify(b.root, b.leafEncoding, b.value, b.proof)),
    proofs: c.bundles.map(b => {
      try { return loaded.getProof(b.value); } catch (e) { return null; }  // leaf not in tree
    }),
  };
});
process.stdout.write(JSON.stringify(out));
