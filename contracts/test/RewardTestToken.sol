// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title RewardTestToken
/// @notice Plain OpenZeppelin ERC20 for tests and the embedded chain: mints `supply` to
/// `holder`. Not for production: a real datanet pays in an existing token.
contract RewardTestToken is ERC20 {
    constructor(address holder, uint256 supply) ERC20("Datanet Reward Test Token", "DNRT") {
        _mint(holder, supply);
    }
}
