// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellStatus, CellType} from "../types/CellTypes.sol";

/// @title Power-cell avatars (IDEA v2.0 auxiliary use cases)
/// @notice Each power cell is an ERC-721 token. The token's owner is the cell's user: it
/// controls the cell's wallet, names the agent key and the meter keys, and sets the limits.
/// Transferring the token is "changing the user of the power cell".
interface ICellRegistry {
    /// @notice Everything the market needs about a cell, in one storage slot.
    struct Cell {
        CellType cellType;
        CellStatus status;
        /// The software agent's key: signs orders and vouchers, never moves money out.
        address agent;
        /// Connection limits at the cell's point of connection, in W.
        uint32 maxImportW;
        uint32 maxExportW;
    }

    /// @notice Cell `cellId` was connected (minted) with its type, parent and limits.
    event CellConnected(
        uint256 indexed cellId,
        address indexed owner,
        CellType cellType,
        uint256 parentCellId,
        uint32 maxImportW,
        uint32 maxExportW
    );
    /// @notice The owner configured a new agent key (zero = no agent).
    event AgentConfigured(uint256 indexed cellId, address indexed agent);
    /// @notice A meter key was added to the cell's composition.
    event MeterAdded(uint256 indexed cellId, address indexed meter);
    /// @notice A meter key was removed; it signs nothing valid from then on.
    event MeterRemoved(uint256 indexed cellId, address indexed meter);
    /// @notice The cell's connection limits changed.
    event LimitsChanged(uint256 indexed cellId, uint32 maxImportW, uint32 maxExportW);
    /// @notice The cell's user changed (token transfer). The agent key was cleared with it.
    event UserChanged(uint256 indexed cellId, address indexed previousOwner, address indexed newOwner);
    /// @notice The cell subscribed to a service application (P2P market, demand response...).
    event ServiceSubscribed(uint256 indexed cellId, address indexed service);
    /// @notice The cell unsubscribed from a service application.
    event ServiceUnsubscribed(uint256 indexed cellId, address indexed service);
    /// @notice The cell was disconnected: no new orders; obligations already made still settle.
    event CellDisconnected(uint256 indexed cellId);

    error RegistryUnknownCell(uint256 cellId);
    error RegistryNotCellOwner(uint256 cellId, address caller);
    error RegistryCellDisconnected(uint256 cellId);
    error RegistryUnknownParent(uint256 parentCellId);
    error RegistryMeterTaken(address meter, uint256 cellId);
    error RegistryMeterNotInCell(address meter, uint256 cellId);
    error RegistryZeroMeter();
    error RegistryAlreadySubscribed(uint256 cellId, address service);
    error RegistryNotSubscribed(uint256 cellId, address service);
    error RegistryZeroLimits(uint256 cellId);

    /// @notice Connects a new power cell and mints its avatar to `owner`.
    /// @param owner The cell's user; receives the avatar token.
    /// @param cellType IDEA Table 1 type; fixes what the cell may buy and sell (Table 2).
    /// @param parentCellId The enclosing cell in the feeder, or 0 for a top-level cell.
    /// @param maxImportW Maximum import at the connection point, in W.
    /// @param maxExportW Maximum export at the connection point, in W.
    /// @param agent The agent key (may be zero and set later).
    /// @param meters The meter keys whose signed readings count for this cell.
    /// @return cellId The new cell's id, counting from 1.
    function connect(
        address owner,
        CellType cellType,
        uint256 parentCellId,
        uint32 maxImportW,
        uint32 maxExportW,
        address agent,
        address[] calldata meters
    ) external returns (uint256 cellId);

    /// @notice Rotates the agent key. Owner only.
    function setAgent(uint256 cellId, address agent) external;

    /// @notice Adds a meter key to the cell. Owner only; a key serves one cell at a time.
    function addMeter(uint256 cellId, address meter) external;

    /// @notice Removes a meter key; readings it signed are refused from now on. Owner only.
    function removeMeter(uint256 cellId, address meter) external;

    /// @notice Changes the connection limits. Owner only.
    function setLimits(uint256 cellId, uint32 maxImportW, uint32 maxExportW) external;

    /// @notice Subscribes the cell to a service application. Owner or agent.
    function subscribe(uint256 cellId, address service) external;

    /// @notice Unsubscribes the cell from a service application. Owner or agent.
    function unsubscribe(uint256 cellId, address service) external;

    /// @notice Disconnects the cell for good. Owner only.
    function disconnect(uint256 cellId) external;

    /// @notice The cell's market record; reverts for an unknown cell.
    function cellOf(uint256 cellId) external view returns (Cell memory);

    /// @notice The cell's agent key (zero for no agent or an unknown cell): the cheap check
    /// for a signature.
    function agentOf(uint256 cellId) external view returns (address);

    /// @notice The cell's parent in the feeder (0 = top level).
    function parentOf(uint256 cellId) external view returns (uint256);

    /// @notice The cell a meter key currently serves, or 0.
    function cellOfMeter(address meter) external view returns (uint256);

    /// @notice Whether the cell is subscribed to `service`.
    function isSubscribed(uint256 cellId, address service) external view returns (bool);

    /// @notice The number of cells connected so far (the highest id).
    function cellCount() external view returns (uint256);
}
