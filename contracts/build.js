// Compile the contracts with the pinned npm `solc` and write the artifacts that ship inside the
// Python package. `--check` recompiles and exits 1 if a committed artifact differs (CI), so the
// ABI + bytecode users deploy always match the source. Each contract is compiled on its own
// (same settings), so adding one never changes another's bytecode.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = path.resolve(__dirname, '..');
const CONTRACTS = [
  { name: 'DatanetAnchor', source: 'contracts/DatanetAnchor.sol', pkg: 'anchoring' },
  { name: 'DatanetRewards', source: 'contracts/DatanetRewards.sol', pkg: 'rewards' },
  // OpenZeppelin ERC20 used by the tests and the embedded chain's reward token.
  { name: 'RewardTestToken', source: 'contracts/test/RewardTestToken.sol', pkg: 'rewards' },
];
// cancun: supported by py-evm (eth-tester), anvil and current L1/L2 chains.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.gasEstimates'] } },
};

function findImport(p) {
  const file = path.join(ROOT, 'node_modules', p);
  if (!file.startsWith(path.join(ROOT, 'node_modules') + path.sep) || !fs.existsSync(file)) {
    return { error: `import not found: ${p} (run npm ci)` };
  }
  return { contents: fs.readFileSync(file, 'utf8') };
}

function compile({ name: NAME, source: SOURCE }) {
  const input = {
    language: 'Solidity',
    sources: { [SOURCE]: { content: fs.readFileSync(path.join(ROOT, SOURCE), 'utf8') } },
    settings: SETTINGS,
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (out.errors || []).filter(e => e.severity === 'error');
  for (const e of out.errors || []) process.stderr.write(e.formattedMessage + '\n');
  if (errors.length) process.exit(2);
  const c = out.contracts[SOURCE][NAME];
  const ozVersion = require(path.join(ROOT, 'node_modules/@openzeppelin/contracts/package.json')).version;
  const { outputSelection, ...settings } = SETTINGS;
  return {
    contractName: NAME,
    sourceName: SOURCE,
    compiler: { name: 'solc', version: solc.version(), npm: 'solc@' + require('solc/package.json').version },
    openzeppelinContracts: ozVersion,
    settings,
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  };
}

let stale = 0;
for (const spec of CONTRACTS) {
  const ARTIFACT = path.join(ROOT, 'datanet', spec.pkg, 'artifacts', `${spec.name}.json`);
  const artifact = compile(spec);
  const text = JSON.stringify(artifact, null, 1) + '\n';
  if (process.argv.includes('--check')) {
    const committed = fs.existsSync(ARTIFACT) ? fs.readFileSync(ARTIFACT, 'utf8') : '';
    if (committed !== text) {
      process.stderr.write(`${path.relative(ROOT, ARTIFACT)} is stale: run \`npm run compile\` and commit it\n`);
      stale += 1;
    } else {
      process.stdout.write(`${path.relative(ROOT, ARTIFACT)} matches ${spec.source} (${artifact.compiler.version})\n`);
    }
  } else {
    fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true });
    fs.writeFileSync(ARTIFACT, text);
    process.stdout.write(`wrote ${path.relative(ROOT, ARTIFACT)} (${(artifact.deployedBytecode.length - 2) / 2} bytes runtime)\n`);
  }
}
if (stale) process.exit(1);
