// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ICellRegistry} from "./interfaces/ICellRegistry.sol";
import {CellStatus, CellType} from "./types/CellTypes.sol";

/// @title CellRegistry
/// @notice ERC-721 avatars of power cells. See {ICellRegistry}.
contract CellRegistry is ERC721, ICellRegistry {
    mapping(uint256 cellId => Cell) private _cells;
    mapping(uint256 cellId => uint256 parentCellId) private _parents;
    mapping(address meter => uint256 cellId) private _meterCells;
    mapping(uint256 cellId => mapping(address service => bool)) private _subscriptions;
    uint256 private _cellCount;

    constructor() ERC721("gridcell power cell", "CELL") {}

    /// @inheritdoc ICellRegistry
    function connect(
        address owner,
        CellType cellType,
        uint256 parentCellId,
        uint32 maxImportW,
        uint32 maxExportW,
        address agent,
        address[] calldata meters
    ) external returns (uint256 cellId) {
        if (parentCellId != 0) {
            CellStatus parentStatus = _cells[parentCellId].status;
            if (parentStatus == CellStatus.None) revert RegistryUnknownParent(parentCellId);
            if (parentStatus == CellStatus.Disconnected) revert RegistryCellDisconnected(parentCellId);
        }
        if (maxImportW == 0 && maxExportW == 0) revert RegistryZeroLimits(0);
        cellId = ++_cellCount;
        _cells[cellId] = Cell({
            cellType: cellType,
            status: CellStatus.Connected,
            agent: agent,
            maxImportW: maxImportW,
            maxExportW: maxExportW
        });
        if (parentCellId != 0) _parents[cellId] = parentCellId;
        emit CellConnected(cellId, owner, cellType, parentCellId, maxImportW, maxExportW);
        if (agent != address(0)) emit AgentConfigured(cellId, agent);
        for (uint256 i = 0; i < meters.length; ++i) {
            _addMeter(cellId, meters[i]);
        }
        // Last: a contract owner's onERC721Received hook sees the cell complete.
        _safeMint(owner, cellId);
    }

    /// @inheritdoc ICellRegistry
    function setAgent(uint256 cellId, address agent) external {
        _requireOwner(cellId);
        _cells[cellId].agent = agent;
        emit AgentConfigured(cellId, agent);
    }

    /// @inheritdoc ICellRegistry
    function addMeter(uint256 cellId, address meter) external {
        _requireOwner(cellId);
        _addMeter(cellId, meter);
    }

    /// @inheritdoc ICellRegistry
    function removeMeter(uint256 cellId, address meter) external {
        _requireOwner(cellId);
        if (_meterCells[meter] != cellId) revert RegistryMeterNotInCell(meter, cellId);
        delete _meterCells[meter];
        emit MeterRemoved(cellId, meter);
    }

    /// @inheritdoc ICellRegistry
    function setLimits(uint256 cellId, uint32 maxImportW, uint32 maxExportW) external {
        _requireOwner(cellId);
        if (maxImportW == 0 && maxExportW == 0) revert RegistryZeroLimits(cellId);
        Cell storage cell = _cells[cellId];
        cell.maxImportW = maxImportW;
        cell.maxExportW = maxExportW;
        emit LimitsChanged(cellId, maxImportW, maxExportW);
    }

    /// @inheritdoc ICellRegistry
    function subscribe(uint256 cellId, address service) external {
        _requireOwnerOrAgent(cellId);
        if (_cells[cellId].status != CellStatus.Connected) revert RegistryCellDisconnected(cellId);
        if (_subscriptions[cellId][service]) revert RegistryAlreadySubscribed(cellId, service);
        _subscriptions[cellId][service] = true;
        emit ServiceSubscribed(cellId, service);
    }

    /// @inheritdoc ICellRegistry
    function unsubscribe(uint256 cellId, address service) external {
        _requireOwnerOrAgent(cellId);
        if (!_subscriptions[cellId][service]) revert RegistryNotSubscribed(cellId, service);
        delete _subscriptions[cellId][service];
        emit ServiceUnsubscribed(cellId, service);
    }

    /// @inheritdoc ICellRegistry
    function disconnect(uint256 cellId) external {
        _requireOwner(cellId);
        _cells[cellId].status = CellStatus.Disconnected;
        emit CellDisconnected(cellId);
    }

    /// @inheritdoc ICellRegistry
    function cellOf(uint256 cellId) external view returns (Cell memory cell) {
        // One SLOAD: the legacy code generator would load the packed struct once per field,
        // and every order submission calls this. Layout: Solidity's, low-order bits first.
        Cell storage ref = _cells[cellId];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(ref.slot)
        }
        cell.cellType = CellType(uint8(word));
        cell.status = CellStatus(uint8(word >> 8));
        cell.agent = address(uint160(word >> 16));
        cell.maxImportW = uint32(word >> 176);
        cell.maxExportW = uint32(word >> 208);
        if (cell.status == CellStatus.None) revert RegistryUnknownCell(cellId);
    }

    /// @inheritdoc ICellRegistry
    function agentOf(uint256 cellId) external view returns (address) {
        Cell storage ref = _cells[cellId];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(ref.slot)
        }
        return address(uint160(word >> 16)); // Solidity's layout for {Cell}, as in cellOf
    }

    /// @inheritdoc ICellRegistry
    function parentOf(uint256 cellId) external view returns (uint256) {
        return _parents[cellId];
    }

    /// @inheritdoc ICellRegistry
    function cellOfMeter(address meter) external view returns (uint256) {
        return _meterCells[meter];
    }

    /// @inheritdoc ICellRegistry
    function isSubscribed(uint256 cellId, address service) external view returns (bool) {
        return _subscriptions[cellId][service];
    }

    /// @inheritdoc ICellRegistry
    function cellCount() external view returns (uint256) {
        return _cellCount;
    }

    /// @dev Changing the user clears the agent key: the previous user's agent must not keep
    /// trading with the new user's money. The wallet follows `ownerOf` by construction.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0) && to != address(0) && from != to) {
            _cells[tokenId].agent = address(0);
            emit UserChanged(tokenId, from, to);
            emit AgentConfigured(tokenId, address(0));
        }
    }

    function _addMeter(uint256 cellId, address meter) private {
        if (meter == address(0)) revert RegistryZeroMeter();
        uint256 holder = _meterCells[meter];
        if (holder != 0) revert RegistryMeterTaken(meter, holder);
        _meterCells[meter] = cellId;
        emit MeterAdded(cellId, meter);
    }

    function _requireOwner(uint256 cellId) private view {
        // ownerOf reverts with ERC721NonexistentToken for an unknown id.
        if (_ownerOf(cellId) == address(0)) revert RegistryUnknownCell(cellId);
        if (ownerOf(cellId) != msg.sender) revert RegistryNotCellOwner(cellId, msg.sender);
    }

    function _requireOwnerOrAgent(uint256 cellId) private view {
        if (_ownerOf(cellId) == address(0)) revert RegistryUnknownCell(cellId);
        if (ownerOf(cellId) != msg.sender && _cells[cellId].agent != msg.sender) {
            revert RegistryNotCellOwner(cellId, msg.sender);
        }
    }
}
