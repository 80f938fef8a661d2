// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ICellRegistry} from "../src/interfaces/ICellRegistry.sol";
import {ICellWallets} from "../src/interfaces/ICellWallets.sol";
import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {CellRoles} from "../src/libraries/CellRoles.sol";
import {CellStatus, CellType, Side} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @dev Exposes the internal library so the table can be checked on its own.
contract CellRolesHarness {
    function canSellEnergy(CellType cellType) external pure returns (bool) {
        return CellRoles.canSellEnergy(cellType);
    }

    function canBuyEnergy(CellType cellType) external pure returns (bool) {
        return CellRoles.canBuyEnergy(cellType);
    }
}

contract CellRegistryTest is PoolFixture {
    address private alice = address(0xA11CE0);
    address private bob = address(0xB0B0);
    address private agent = address(0xA6E27);
    address private meter1 = address(0x3E7E51);
    address private meter2 = address(0x3E7E52);
    address private service = address(0x5E2F);

    function _meters(address a) private pure returns (address[] memory m) {
        m = new address[](1);
        m[0] = a;
    }

    function _meters(address a, address b) private pure returns (address[] memory m) {
        m = new address[](2);
        m[0] = a;
        m[1] = b;
    }

    function _connectAlice() private returns (uint256) {
        return registry.connect(alice, CellType.Prosumer, 0, 10_000, 5_000, agent, _meters(meter1));
    }

    // connect

    function test_connect_mintsAvatarAndRecordsCell() public {
        uint256 id = registry.connect(alice, CellType.ActiveConsumer, 0, 11_000, 4_000, agent, _meters(meter1, meter2));
        assertEq(id, 1, "ids count from 1");
        assertEq(registry.cellCount(), 1, "count");
        assertEq(registry.ownerOf(1), alice, "owner");
        assertEq(registry.balanceOf(alice), 1, "one avatar");
        ICellRegistry.Cell memory c = registry.cellOf(1);
        assertEq(uint256(c.cellType), uint256(CellType.ActiveConsumer), "type");
        assertEq(uint256(c.status), uint256(CellStatus.Connected), "status");
        assertEq(c.agent, agent, "agent");
        assertEq(c.maxImportW, 11_000, "import limit");
        assertEq(c.maxExportW, 4_000, "export limit");
        assertEq(registry.parentOf(1), 0, "top level");
        assertEq(registry.cellOfMeter(meter1), 1, "meter 1");
        assertEq(registry.cellOfMeter(meter2), 1, "meter 2");

        uint256 id2 = registry.connect(bob, CellType.PassiveConsumer, 0, 1, 0, address(0), new address[](0));
        assertEq(id2, 2, "second id");
        assertEq(registry.cellCount(), 2, "count");
    }

    /// The mint comes last, so that an owner contract's onERC721Received sees the cell whole.
    function test_connect_emitsConnectedAgentMeterEventsThenMint() public {
        vm.expectEmit(address(registry));
        emit ICellRegistry.CellConnected(1, alice, CellType.Prosumer, 0, 10_000, 5_000);
        vm.expectEmit(address(registry));
        emit ICellRegistry.AgentConfigured(1, agent);
        vm.expectEmit(address(registry));
        emit ICellRegistry.MeterAdded(1, meter1);
        vm.expectEmit(address(registry));
        emit ICellRegistry.MeterAdded(1, meter2);
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(address(0), alice, 1);
        registry.connect(alice, CellType.Prosumer, 0, 10_000, 5_000, agent, _meters(meter1, meter2));
    }

    function test_connect_emitsNoAgentEventWhenAgentZero() public {
        vm.recordLogs();
        registry.connect(alice, CellType.Prosumer, 0, 10_000, 5_000, address(0), new address[](0));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 2, "CellConnected and Transfer only");
        assertEq(logs[0].topics[0], ICellRegistry.CellConnected.selector, "connected");
        assertEq(logs[1].topics[0], IERC721.Transfer.selector, "mint");
        assertEq(registry.cellOf(1).agent, address(0), "no agent");
    }

    function test_connect_recordsParent() public {
        uint256 parent = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.CellConnected(2, bob, CellType.PassiveConsumer, parent, 3_000, 0);
        uint256 child = registry.connect(bob, CellType.PassiveConsumer, parent, 3_000, 0, address(0), new address[](0));
        assertEq(registry.parentOf(child), parent, "parent");
    }

    function test_connect_revertsWithUnknownParent() public {
        _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownParent.selector, 2));
        registry.connect(bob, CellType.Prosumer, 2, 1, 1, address(0), new address[](0));
    }

    function test_connect_revertsWithDisconnectedParent() public {
        uint256 parent = _connectAlice();
        vm.prank(alice);
        registry.disconnect(parent);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryCellDisconnected.selector, parent));
        registry.connect(bob, CellType.Prosumer, parent, 1, 1, address(0), new address[](0));
    }

    function test_connect_acceptsOneSidedLimits() public {
        uint256 importOnly = registry.connect(alice, CellType.PassiveConsumer, 0, 1, 0, address(0), new address[](0));
        uint256 exportOnly = registry.connect(bob, CellType.StochasticGenerator, 0, 0, 1, address(0), new address[](0));
        assertEq(registry.cellOf(importOnly).maxExportW, 0, "import only");
        assertEq(registry.cellOf(exportOnly).maxImportW, 0, "export only");
    }

    /// The cell has no id yet when its limits are refused, hence 0.
    function test_connect_revertsWithZeroLimits() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryZeroLimits.selector, 0));
        registry.connect(alice, CellType.Prosumer, 0, 0, 0, agent, _meters(meter1));
        assertEq(registry.cellCount(), 0, "nothing minted");
    }

    function test_connect_revertsWithMeterTakenWhenMeterServesAnotherCell() public {
        _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterTaken.selector, meter1, 1));
        registry.connect(bob, CellType.Prosumer, 0, 1, 1, address(0), _meters(meter2, meter1));
    }

    function test_connect_revertsWithMeterTakenWhenMeterListedTwice() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterTaken.selector, meter1, 1));
        registry.connect(alice, CellType.Prosumer, 0, 1, 1, address(0), _meters(meter1, meter1));
    }

    function test_connect_revertsWithZeroMeter() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryZeroMeter.selector));
        registry.connect(alice, CellType.Prosumer, 0, 1, 1, address(0), _meters(address(0)));
    }

    function test_cellOf_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 0));
        registry.cellOf(0);
        _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 2));
        registry.cellOf(2);
    }

    // setAgent

    function test_setAgent_rotatesAgentAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.AgentConfigured(id, bob);
        vm.prank(alice);
        registry.setAgent(id, bob);
        assertEq(registry.cellOf(id).agent, bob, "agent");
    }

    function test_setAgent_revertsWithNotCellOwnerWhenCallerIsAgent() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, agent));
        vm.prank(agent);
        registry.setAgent(id, agent);
    }

    function test_setAgent_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 7));
        vm.prank(alice);
        registry.setAgent(7, agent);
    }

    // addMeter / removeMeter

    function test_addMeter_addsKeyAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.MeterAdded(id, meter2);
        vm.prank(alice);
        registry.addMeter(id, meter2);
        assertEq(registry.cellOfMeter(meter2), id, "meter serves the cell");
    }

    function test_addMeter_revertsWithMeterTakenWhenKeyServesAnotherCell() public {
        _connectAlice();
        uint256 bobCell = registry.connect(bob, CellType.Prosumer, 0, 1, 1, address(0), new address[](0));
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterTaken.selector, meter1, 1));
        vm.prank(bob);
        registry.addMeter(bobCell, meter1);
    }

    function test_addMeter_revertsWithMeterTakenWhenKeyAlreadyInCell() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterTaken.selector, meter1, id));
        vm.prank(alice);
        registry.addMeter(id, meter1);
    }

    function test_addMeter_revertsWithZeroMeter() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryZeroMeter.selector));
        vm.prank(alice);
        registry.addMeter(id, address(0));
    }

    function test_addMeter_revertsWithNotCellOwner() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, agent));
        vm.prank(agent);
        registry.addMeter(id, meter2);
    }

    function test_removeMeter_freesKeyAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.MeterRemoved(id, meter1);
        vm.prank(alice);
        registry.removeMeter(id, meter1);
        assertEq(registry.cellOfMeter(meter1), 0, "key serves no cell");

        uint256 bobCell = registry.connect(bob, CellType.Prosumer, 0, 1, 1, address(0), new address[](0));
        vm.prank(bob);
        registry.addMeter(bobCell, meter1);
        assertEq(registry.cellOfMeter(meter1), bobCell, "a freed key may serve another cell");
    }

    function test_removeMeter_revertsWithMeterNotInCellWhenKeyServesAnotherCell() public {
        _connectAlice();
        uint256 bobCell = registry.connect(bob, CellType.Prosumer, 0, 1, 1, address(0), _meters(meter2));
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterNotInCell.selector, meter1, bobCell));
        vm.prank(bob);
        registry.removeMeter(bobCell, meter1);
        assertEq(registry.cellOfMeter(meter1), 1, "alice keeps her meter");
    }

    function test_removeMeter_revertsWithMeterNotInCellWhenAlreadyRemoved() public {
        uint256 id = _connectAlice();
        vm.startPrank(alice);
        registry.removeMeter(id, meter1);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryMeterNotInCell.selector, meter1, id));
        registry.removeMeter(id, meter1);
        vm.stopPrank();
    }

    function test_removeMeter_revertsWithNotCellOwner() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, stranger));
        vm.prank(stranger);
        registry.removeMeter(id, meter1);
    }

    // setLimits

    function test_setLimits_updatesLimitsAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.LimitsChanged(id, 0, 7_000);
        vm.prank(alice);
        registry.setLimits(id, 0, 7_000);
        ICellRegistry.Cell memory c = registry.cellOf(id);
        assertEq(c.maxImportW, 0, "import");
        assertEq(c.maxExportW, 7_000, "export");
    }

    function test_setLimits_revertsWithZeroLimits() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryZeroLimits.selector, id));
        vm.prank(alice);
        registry.setLimits(id, 0, 0);
    }

    function test_setLimits_revertsWithNotCellOwner() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, agent));
        vm.prank(agent);
        registry.setLimits(id, 1, 1);
    }

    // subscribe / unsubscribe

    function test_subscribe_byOwnerOrAgentRecordsAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.ServiceSubscribed(id, service);
        vm.prank(alice);
        registry.subscribe(id, service);
        assertTrue(registry.isSubscribed(id, service), "owner subscribed");

        vm.prank(agent);
        registry.subscribe(id, address(0x5E30));
        assertTrue(registry.isSubscribed(id, address(0x5E30)), "agent subscribed");
        assertFalse(registry.isSubscribed(id, address(0x5E31)), "other service");
    }

    function test_subscribe_revertsWithAlreadySubscribed() public {
        uint256 id = _connectAlice();
        vm.prank(alice);
        registry.subscribe(id, service);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryAlreadySubscribed.selector, id, service));
        vm.prank(agent);
        registry.subscribe(id, service);
    }

    function test_subscribe_revertsWithCellDisconnected() public {
        uint256 id = _connectAlice();
        vm.prank(alice);
        registry.disconnect(id);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryCellDisconnected.selector, id));
        vm.prank(alice);
        registry.subscribe(id, service);
    }

    function test_subscribe_revertsWithNotCellOwnerWhenStranger() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, stranger));
        vm.prank(stranger);
        registry.subscribe(id, service);
    }

    function test_subscribe_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 3));
        vm.prank(alice);
        registry.subscribe(3, service);
    }

    function test_unsubscribe_removesAndEmits() public {
        uint256 id = _connectAlice();
        vm.prank(alice);
        registry.subscribe(id, service);
        vm.expectEmit(address(registry));
        emit ICellRegistry.ServiceUnsubscribed(id, service);
        vm.prank(agent);
        registry.unsubscribe(id, service);
        assertFalse(registry.isSubscribed(id, service), "unsubscribed");
    }

    function test_unsubscribe_worksAfterDisconnect() public {
        uint256 id = _connectAlice();
        vm.startPrank(alice);
        registry.subscribe(id, service);
        registry.disconnect(id);
        registry.unsubscribe(id, service);
        vm.stopPrank();
        assertFalse(registry.isSubscribed(id, service), "unsubscribed");
    }

    function test_unsubscribe_revertsWithNotSubscribed() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotSubscribed.selector, id, service));
        vm.prank(alice);
        registry.unsubscribe(id, service);
    }

    function test_unsubscribe_revertsWithNotCellOwnerWhenStranger() public {
        uint256 id = _connectAlice();
        vm.prank(alice);
        registry.subscribe(id, service);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, stranger));
        vm.prank(stranger);
        registry.unsubscribe(id, service);
    }

    // disconnect

    function test_disconnect_marksCellDisconnectedAndEmits() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit ICellRegistry.CellDisconnected(id);
        vm.prank(alice);
        registry.disconnect(id);
        assertEq(uint256(registry.cellOf(id).status), uint256(CellStatus.Disconnected), "status");
        assertEq(registry.ownerOf(id), alice, "the avatar stays");
    }

    function test_disconnect_revertsWithNotCellOwnerWhenCallerIsAgent() public {
        uint256 id = _connectAlice();
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, agent));
        vm.prank(agent);
        registry.disconnect(id);
    }

    function test_disconnect_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 1));
        registry.disconnect(1);
    }

    function test_disconnect_stopsNewOrders() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        vm.prank(k.owner);
        registry.disconnect(k.id);
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](1);
        batch[0] = sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 100, 1, 0));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolCellNotConnected.selector, k.id));
        pool.submitOrders(batch);
    }

    // transfer = change of user

    function test_transferFrom_changesUserAndClearsAgent() public {
        uint256 id = _connectAlice();
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(alice, bob, id);
        vm.expectEmit(address(registry));
        emit ICellRegistry.UserChanged(id, alice, bob);
        vm.expectEmit(address(registry));
        emit ICellRegistry.AgentConfigured(id, address(0));
        vm.prank(alice);
        registry.transferFrom(alice, bob, id);

        assertEq(registry.ownerOf(id), bob, "new user");
        assertEq(registry.cellOf(id).agent, address(0), "agent cleared");
        assertEq(registry.cellOfMeter(meter1), id, "meters belong to the cell, not the user");
    }

    function test_transferFrom_keepsAgentWhenSelfTransfer() public {
        uint256 id = _connectAlice();
        vm.recordLogs();
        vm.prank(alice);
        registry.transferFrom(alice, alice, id);
        assertEq(vm.getRecordedLogs().length, 1, "Transfer only, no UserChanged");
        assertEq(registry.cellOf(id).agent, agent, "agent kept");
    }

    function test_transferFrom_oldOwnerLosesControl() public {
        uint256 id = _connectAlice();
        vm.prank(alice);
        registry.transferFrom(alice, bob, id);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, alice));
        vm.prank(alice);
        registry.setAgent(id, alice);
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryNotCellOwner.selector, id, agent));
        vm.prank(agent);
        registry.subscribe(id, service);
        vm.prank(bob);
        registry.setAgent(id, stranger);
        assertEq(registry.cellOf(id).agent, stranger, "new user names the agent");
    }

    function test_transferFrom_movesWalletControlToNewOwner() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        vm.prank(k.owner);
        registry.transferFrom(k.owner, bob, k.id);

        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotCellOwner.selector, k.id, k.owner));
        vm.prank(k.owner);
        wallets.withdraw(k.id, 1, k.owner);

        vm.prank(bob);
        wallets.withdraw(k.id, FUNDS, bob);
        assertEq(token.balanceOf(bob), FUNDS, "the new user withdrew the cell's money");
        assertEq(available(k.id), 0, "wallet empty");
    }

    function test_transferFrom_oldAgentCanNoLongerSubmitOrders() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](1);
        batch[0] = sign(k.agentKey, order(k.id, t, Side.Buy, 100, 1_000, 0));
        vm.prank(k.owner);
        registry.transferFrom(k.owner, bob, k.id);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, k.agent));
        pool.submitOrders(batch);
    }

    // IDEA Table 2, energy column

    /// @dev The energy column of IDEA v2.0 Table 2 exactly as ARCHITECTURE.md writes it,
    /// indexed by the CellType value.
    function _energyColumn(uint256 cellType) private pure returns (string memory) {
        string[6] memory column = ["S", "S", "S B", "S B", "B", "B"];
        return column[cellType];
    }

    function _has(string memory cellText, bytes1 role) private pure returns (bool) {
        bytes memory b = bytes(cellText);
        for (uint256 i = 0; i < b.length; ++i) {
            if (b[i] == role) return true;
        }
        return false;
    }

    function testFuzz_cellRoles_matchIdeaTable2EnergyColumn(uint256 rawType) public {
        CellRolesHarness roles = new CellRolesHarness();
        uint256 typeIndex = bound(rawType, 0, 5);
        CellType cellType = CellType(typeIndex);
        assertEq(roles.canSellEnergy(cellType), _has(_energyColumn(typeIndex), "S"), "sell column");
        assertEq(roles.canBuyEnergy(cellType), _has(_energyColumn(typeIndex), "B"), "buy column");
    }

    function test_cellRoles_everyTypeTradesEnergySomeWay() public {
        CellRolesHarness roles = new CellRolesHarness();
        uint256 sellers;
        uint256 buyers;
        for (uint256 i = 0; i < 6; ++i) {
            bool s = roles.canSellEnergy(CellType(i));
            bool b = roles.canBuyEnergy(CellType(i));
            assertTrue(s || b, "every type has a role");
            if (s) ++sellers;
            if (b) ++buyers;
        }
        assertEq(sellers, 4, "LFG, stochastic, prosumer, consumer with generation sell");
        assertEq(buyers, 4, "prosumer, consumer with generation, active and passive consumers buy");
    }
}
