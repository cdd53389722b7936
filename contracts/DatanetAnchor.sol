// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title DatanetAnchor
/// @notice Append-only registry of the Merkle roots of datanet batches. Each datanet's batches
/// form a chain: a new batch must name the datanet's last anchored root as `prevRoot`.
/// Leaves follow OpenZeppelin's StandardMerkleTree with the encoding
/// `(bytes32 datanetId, bytes32 batchId, bytes32 contributionId, address contributor,
/// bytes32 contentHash)`, so a contributor can prove their record is in a batch on-chain.
contract DatanetAnchor is AccessControl {
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    struct Batch {
        bytes32 root;
        bytes32 prevRoot;
        uint64 leafCount;
        uint64 seq;
        uint64 blockNumber;
    }

    mapping(bytes32 datanetId => mapping(bytes32 batchId => Batch)) private _batches;
    mapping(bytes32 datanetId => bytes32) public lastRoot;
    mapping(bytes32 datanetId => uint64) public batchCount;

    event BatchAnchored(
        bytes32 indexed datanetId,
        bytes32 indexed batchId,
        bytes32 root,
        bytes32 prevRoot,
        uint64 leafCount,
        uint64 seq
    );

    error BatchAlreadyAnchored(bytes32 datanetId, bytes32 batchId, bytes32 root);
    error PrevRootMismatch(bytes32 datanetId, bytes32 expected, bytes32 given);
    error EmptyBatch(bytes32 datanetId, bytes32 batchId);

    constructor(address admin, address anchorer) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @notice Anchor the root of a batch. Reverts if the batch is already anchored, if
    /// `prevRoot` is not the datanet's last root, or if the batch is empty.
    function anchor(bytes32 datanetId, bytes32 batchId, bytes32 root, uint64 leafCount, bytes32 prevRoot)
        external
        onlyRole(ANCHORER_ROLE)
    {
        Batch storage b = _batches[datanetId][batchId];
        if (b.root != bytes32(0)) revert BatchAlreadyAnchored(datanetId, batchId, b.root);
        if (root == bytes32(0) || leafCount == 0) revert EmptyBatch(datanetId, batchId);
        bytes32 last = lastRoot[datanetId];
        if (prevRoot != last) revert PrevRootMismatch(datanetId, last, prevRoot);
        uint64 seq = batchCount[datanetId] + 1;
        _batches[datanetId][batchId] = Batch(root, prevRoot, leafCount, seq, uint64(block.number));
        lastRoot[datanetId] = root;
        batchCount[datanetId] = seq;
        emit BatchAnchored(datanetId, batchId, root, prevRoot, leafCount, seq);
    }

    /// @notice The anchored batch (all zero if not anchored).
    function batchOf(bytes32 datanetId, bytes32 batchId) external view returns (Batch memory) {
        return _batches[datanetId][batchId];
    }

    /// @notice True if the contribution is a leaf of the anchored batch.
    function verify(
        bytes32 datanetId,
        bytes32 batchId,
        bytes32 contributionId,
        address contributor,
        bytes32 contentHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 leaf = keccak256(
            bytes.concat(keccak256(abi.encode(datanetId, batchId, contributionId, contributor, contentHash)))
        );
        return verifyLeaf(datanetId, batchId, leaf, proof);
    }

    /// @notice True if the standard leaf hash `leaf` is in the anchored batch.
    function verifyLeaf(bytes32 datanetId, bytes32 batchId, bytes32 leaf, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        bytes32 root = _batches[datanetId][batchId].root;
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice True if all standard leaf hashes `leaves` are in the anchored batch (multiproof).
    function verifyMultiProof(
        bytes32 datanetId,
        bytes32 batchId,
        bytes32[] calldata leaves,
        bytes32[] calldata proof,
        bool[] calldata proofFlags
    ) external view returns (bool) {
        bytes32 root = _batches[datanetId][batchId].root;
        return root != bytes32(0) && MerkleProof.multiProofVerifyCalldata(proof, proofFlags, root, leaves);
    }
}
