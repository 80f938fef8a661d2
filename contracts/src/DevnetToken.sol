// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title DevnetToken
/// @notice Settlement token for devnets only: ERC-20 with ERC-2612 permit and an open faucet.
/// Six decimals, like the euro and dollar stablecoins a real deployment would settle in.
/// Never deploy it where the tokens are meant to be worth something.
contract DevnetToken is ERC20, ERC20Permit {
    /// @notice The most one faucet call hands out: 100,000 tokens.
    uint256 public constant FAUCET_LIMIT = 100_000e6;

    error FaucetLimitExceeded(uint256 amount, uint256 limit);

    constructor() ERC20("gridcell devnet euro", "dEUR") ERC20Permit("gridcell devnet euro") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints up to {FAUCET_LIMIT} to `to`. Anyone may call it.
    function faucet(address to, uint256 amount) external {
        if (amount > FAUCET_LIMIT) revert FaucetLimitExceeded(amount, FAUCET_LIMIT);
        _mint(to, amount);
    }
}
