// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellType} from "../types/CellTypes.sol";

/// @notice The energy column of IDEA v2.0 Table 2: which cell types may sell or buy energy.
/// Power and flexibility products are not traded by the pool yet; their columns are kept in
/// docs/contracts.md for the services that will.
library CellRoles {
    /// @dev Bit i set = cell type i may sell energy. LFG, stochastic generator, prosumer,
    /// consumer with own generation.
    uint256 private constant SELLS_ENERGY = 0x0F;
    /// @dev Bit i set = cell type i may buy energy. Prosumer, consumer with own generation,
    /// active consumer, passive consumer.
    uint256 private constant BUYS_ENERGY = 0x3C;

    function canSellEnergy(CellType cellType) internal pure returns (bool) {
        return (SELLS_ENERGY >> uint8(cellType)) & 1 == 1;
    }

    function canBuyEnergy(CellType cellType) internal pure returns (bool) {
        return (BUYS_ENERGY >> uint8(cellType)) & 1 == 1;
    }
}
