// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Power-cell types of IDEA v2.0, Table 1. The numeric values are an API: the
/// TypeScript client and the indexer use them.
enum CellType {
    LoadFollowingGenerator, // 0
    StochasticGenerator, // 1
    Prosumer, // 2
    ConsumerWithGeneration, // 3
    ActiveConsumer, // 4
    PassiveConsumer // 5
}

/// @notice Lifecycle status of a cell avatar. `None` marks an id that was never minted.
enum CellStatus {
    None,
    Connected,
    Disconnected
}

/// @notice Order side in the clearing pool.
enum Side {
    Buy, // 0
    Sell // 1
}
