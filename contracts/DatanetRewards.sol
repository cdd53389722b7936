// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title DatanetRewards
/// @notice Cumulative Merkle distributor of one datanet's reward epochs (one contract per
/// datanet and token). A publisher sets each epoch's root in order and pays the epoch's pool
/// into the contract in the same transaction; anyone can then claim for an account with a
/// proof of its cumulative amount, which pays the difference to what it already received.
/// Leaves follow OpenZeppelin's StandardMerkleTree with the encoding
/// `(uint256 chainId, bytes32 datanetKey, address account, uint256 cumulativeAmount)`; the
/// contract checks `chainId == block.chainid` and its own `datanetKey`, so a proof cannot be
/// replayed on another chain or for another datanet.
contract DatanetRewards is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant PUBLISHER_ROLE = keccak256("PUBLISHER_ROLE");

    IERC20 public immutable token;
    bytes32 public immutable datanetKey;

    /// @notice Root of the latest published epoch (zero before the first).
    bytes32 public root;
    /// @notice Number of the latest published epoch (0 before the first).
    uint64 public epoch;
    /// @notice Sum of all published pools.
    uint256 public totalPublished;
    mapping(uint64 epoch => bytes32) public rootOf;
    mapping(address account => uint256) public claimed;

    event EpochPublished(uint64 indexed epoch, bytes32 root, uint256 pool, uint256 totalPublished);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, uint64 epoch);

    error EpochOutOfOrder(uint64 expected, uint64 given);
    error EmptyRoot(uint64 epoch);
    error StaleRoot(bytes32 current, bytes32 expected);
    error InvalidProof(address account, uint256 cumulativeAmount);

    constructor(address admin, address publisher, IERC20 token_, bytes32 datanetKey_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PUBLISHER_ROLE, publisher);
        token = token_;
        datanetKey = datanetKey_;
    }

    /// @notice Publish epoch `epoch_` (must be the next one) with its cumulative `root`, and
    /// pull its `pool` from the publisher (who must have approved this contract).
    function publish(uint64 epoch_, bytes32 root_, uint256 pool) external onlyRole(PUBLISHER_ROLE) {
        if (epoch_ != epoch + 1) revert EpochOutOfOrder(epoch + 1, epoch_);
        if (root_ == bytes32(0)) revert EmptyRoot(epoch_);
        epoch = epoch_;
        root = root_;
        rootOf[epoch_] = root_;
        totalPublished += pool;
        emit EpochPublished(epoch_, root_, pool, totalPublished);
        token.safeTransferFrom(msg.sender, address(this), pool);
    }

    /// @notice Standard leaf hash of `(block.chainid, datanetKey, account, cumulativeAmount)`.
    function leafOf(address account, uint256 cumulativeAmount) public view returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(block.chainid, datanetKey, account, cumulativeAmount))));
    }

    /// @notice Pay `account` its `cumulativeAmount` minus what it already claimed. Reverts if
    /// `expectedRoot` is not the current root (a root update raced the claim) or the proof is
    /// invalid; pays nothing (and does not revert) when nothing new is due.
    function claim(address account, uint256 cumulativeAmount, bytes32 expectedRoot, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        bytes32 current = root;
        if (expectedRoot != current) revert StaleRoot(current, expectedRoot);
        if (!MerkleProof.verifyCalldata(proof, current, leafOf(account, cumulativeAmount))) {
            revert InvalidProof(account, cumulativeAmount);
        }
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) return 0;
        amount = cumulativeAmount - already;
        claimed[account] = cumulativeAmount;
        emit Claimed(account, amount, cumulativeAmount, epoch);
        token.safeTransfer(account, amount);
    }
}
