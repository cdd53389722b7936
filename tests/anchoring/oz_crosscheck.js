// Cross-check helper for tests/anchoring/test_merkle_js.py: builds trees with
// @openzeppelin/merkle-tree and prints roots, proofs, multiproofs and dumps as JSON.
// Input (stdin): {"cases": [{"leafEncoding": [...], "values": [...], "sortLeaves": bool,
//                            "multi": [[valueIndex, ...], ...]}],
//                 "load": [dump, ...]}
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const input = JSON.parse(require('fs').readFileSync(0, 'utf-8'));
const cases = input.cases.map(c => {
  const tree = StandardMerkleTree.of(c.values, c.leafEncoding, { sortLeaves: c.sortLeaves });
  return {
    root: tree.root,
    proofs: c.values.map((_, i) => tree.getProof(i)),
    multi: (c.multi || []).map(ix => tree.getMultiProof(ix)),
    dump: tree.dump(),
  };
});
const loaded = (input.load || []).map(d => {
  const tree = StandardMerkleTree.load(d);
  tree.validate();
  return {
    root: tree.root,
    proofs: d.values.map((_, i) => tree.getProof(i)),
    verified: d.values.every((v, i) =>
      StandardMerkleTree.verify(tree.root, d.leafEncoding, v.value, tree.getProof(i))),
  };
});
process.stdout.write(JSON.stringify({ cases, loaded }, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
