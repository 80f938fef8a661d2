// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICellRegistry} from "../src/interfaces/ICellRegistry.sol";
import {ICellWallets} from "../src/interfaces/ICellWallets.sol";
import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {ClearingPool} from "../src/ClearingPool.sol";
import {CellType, Side} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";
import {ReferenceAuction} from "./utils/ReferenceAuction.sol";
import {Vm} from "./utils/Vm.sol";

contract ClearingPoolTest is PoolFixture {
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant ORDER_TYPEHASH = keccak256(
        "Order(uint256 cell,uint64 interval,uint8 side,uint64 energyWh,uint96 limitPrice,uint32 nonce,uint64 expiry)"
    );
    bytes32 private constant READING_TYPEHASH = keccak256(
        "MeterReading(address meter,uint256 cell,uint64 interval,uint64 importWh,uint64 exportWh,uint64 importCumWh,uint64 exportCumWh,uint64 seq)"
    );

    /// The standard book (ASK, BID from the fixture): the clearing-price interval is [ASK, BID]
    /// and the price its midpoint.
    uint96 private constant MID = 200_000;
    /// 100 kW for 900 s.
    uint256 private constant LIMIT_WH = 25_000;

    /// Position.flags bits.
    uint8 private constant SCHEDULED = 1;
    uint8 private constant REPORTED = 2;
    uint8 private constant CLAIMED = 4;

    /// Sellers s1 (600 Wh) and s2 (400 Wh) ask ASK, buyers b1 (700 Wh) and b2 (300 Wh) bid
    /// BID: everything fills at MID, volume 1000 Wh.
    struct Four {
        CellKeys s1;
        CellKeys s2;
        CellKeys b1;
        CellKeys b2;
        uint64 t;
    }

    // helpers

    function _cells4(uint256 a, uint256 b, uint256 c, uint256 d) private pure returns (uint256[] memory l) {
        l = new uint256[](4);
        l[0] = a;
        l[1] = b;
        l[2] = c;
        l[3] = d;
    }

    function _times(uint64 t) private view returns (uint256 gate, uint256 start, uint256 end, uint256 windowEnd) {
        return pool.timesOf(t);
    }

    function _structHash(IClearingPool.Order memory o) private pure returns (bytes32) {
        return
            keccak256(
                abi.encode(ORDER_TYPEHASH, o.cell, o.interval, o.side, o.energyWh, o.limitPrice, o.nonce, o.expiry)
            );
    }

    function _domainSeparator(address verifyingContract) private view returns (bytes32) {
        return
            keccak256(
                abi.encode(DOMAIN_TYPEHASH, keccak256("gridcell"), keccak256("1"), block.chainid, verifyingContract)
            );
    }

    function _setCap(CellKeys memory k, uint256 cap) private {
        vm.prank(k.owner);
        wallets.setDailyCap(k.id, cap);
    }

    function _fourPartyCleared() private returns (Four memory m) {
        m.s1 = newCell(CellType.Prosumer);
        m.s2 = newCell(CellType.LoadFollowingGenerator);
        m.b1 = newCell(CellType.PassiveConsumer);
        m.b2 = newCell(CellType.ActiveConsumer);
        m.t = nextInterval();
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](4);
        orders[0] = order(m.s1.id, m.t, Side.Sell, 600, ASK, 0);
        orders[1] = order(m.s2.id, m.t, Side.Sell, 400, ASK, 0);
        orders[2] = order(m.b1.id, m.t, Side.Buy, 700, BID, 0);
        orders[3] = order(m.b2.id, m.t, Side.Buy, 300, BID, 0);
        submit(m.s1.agentKey, orders[0]);
        submit(m.s2.agentKey, orders[1]);
        submit(m.b1.agentKey, orders[2]);
        submit(m.b2.agentKey, orders[3]);
        warpToGateClosure(m.t);
        pool.clear(m.t, ASK, BID, orders);
    }

    function _claimFour(Four memory m) private {
        pool.claim(m.t, _cells4(m.b1.id, m.b2.id, m.s1.id, m.s2.id));
    }

    /// What a buyer paid in total, once its escrow is settled.
    function _paid(CellKeys memory k) private view returns (uint256) {
        assertEq(locked(k.id), 0, "escrow settled");
        return FUNDS - available(k.id);
    }

    function _received(CellKeys memory k) private view returns (uint256) {
        return available(k.id) - FUNDS;
    }

    // EIP-712 and timing

    function test_hashOrder_matchesEip712TypedData() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.Order memory o = order(k.id, nextInterval(), Side.Sell, 1234, 56_789, 3);
        assertEq(pool.domainSeparator(), _domainSeparator(address(pool)), "domain");
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(address(pool)), _structHash(o)));
        assertEq(pool.hashOrder(o), expected, "digest");
        assertEq(pool.ORDER_TYPEHASH(), ORDER_TYPEHASH, "typehash");
    }

    function test_hashReading_matchesEip712TypedData() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.MeterReading memory r = reading(k, 77, 1, 2, 3).reading;
        bytes32 structHash = keccak256(
            abi.encode(
                READING_TYPEHASH,
                r.meter,
                r.cell,
                r.interval,
                r.importWh,
                r.exportWh,
                r.importCumWh,
                r.exportCumWh,
                r.seq
            )
        );
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(address(pool)), structHash));
        assertEq(pool.hashReading(r), expected, "digest");
    }

    function test_timesOf_returnsGateDeliveryAndWindowTimes() public view {
        (uint256 gate, uint256 start, uint256 end, uint256 windowEnd) = pool.timesOf(2_000_002);
        assertEq(start, 2_000_002 * 900, "delivery starts at t*L");
        assertEq(gate, 2_000_002 * 900 - 300, "gate closes a lead before");
        assertEq(end, 2_000_003 * 900, "delivery ends at (t+1)*L");
        assertEq(windowEnd, 2_000_003 * 900 + 3600, "settlement window after delivery");
        (gate,,,) = pool.timesOf(0);
        assertEq(gate, 0, "no underflow before the epoch");
    }

    function test_constructor_revertsWithBadTiming() public {
        vm.expectRevert(bytes("bad timing"));
        new ClearingPool(registry, wallets, 0, 0, WINDOW, MAX_ORDERS);
        vm.expectRevert(bytes("bad timing"));
        new ClearingPool(registry, wallets, INTERVAL, INTERVAL * 96, WINDOW, MAX_ORDERS);
    }

    function test_constructor_revertsWithBadOrderBound() public {
        vm.expectRevert(bytes("bad order bound"));
        new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, 0);
        vm.expectRevert(bytes("bad order bound"));
        new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, uint256(type(uint32).max) + 1);
    }

    // submitOrders

    function test_submitOrders_booksBuyOrderAndLocksEscrow() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order memory o = order(k.id, t, Side.Buy, 800, BID, 0);
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, o));
        vm.expectEmit(address(pool));
        emit IClearingPool.OrderSubmitted(t, k.id, 0, Side.Buy, 800, BID, o.expiry);
        vm.prank(stranger); // any relayer may hand orders in
        pool.submitOrders(batch);

        assertEq(locked(k.id), 240_000, "escrow = 300000 * 800 / 1000");
        assertEq(available(k.id), FUNDS - 240_000, "available");
        IClearingPool.Position memory p = pool.positionOf(t, k.id);
        assertEq(p.escrow, 240_000, "position escrow");
        assertEq(p.orderedWh, 800, "ordered");
        assertEq(p.orderCount, 1, "count");
        assertEq(uint256(p.side), uint256(Side.Buy), "side");
        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertEq(s.orderCount, 1, "interval count");
        assertEq(s.orderChain, keccak256(abi.encode(bytes32(0), _structHash(o))), "hash chain");
    }

    function test_submitOrders_booksSellOrderWithoutEscrow() public {
        CellKeys memory k = newCell(CellType.StochasticGenerator);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Sell, 900, ASK, 0));
        assertEq(locked(k.id), 0, "sells lock nothing");
        (, uint256 spent,) = wallets.dailySpend(k.id);
        assertEq(spent, 0, "and spend nothing of the cap");
        assertEq(pool.positionOf(t, k.id).orderedWh, 900, "ordered");
        assertEq(uint256(pool.positionOf(t, k.id).side), uint256(Side.Sell), "side");
    }

    function test_submitOrders_roundsEscrowUp() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        submit(k.agentKey, order(k.id, nextInterval(), Side.Buy, 7, 333_333, 0));
        assertEq(locked(k.id), 2334, "ceil(333333 * 7 / 1000) = ceil(2333.331)");
    }

    function testFuzz_submitOrders_locksEscrowRoundedUp(uint256 price, uint256 energy) public {
        price = bound(price, 0, 1e9);
        energy = bound(energy, 1, LIMIT_WH);
        CellKeys memory k = newCell(CellType.Prosumer);
        submit(k.agentKey, order(k.id, nextInterval(), Side.Buy, uint64(energy), uint96(price), 0));
        uint256 escrow = locked(k.id);
        assertGe(escrow * 1000, price * energy, "covers the worst case");
        if (escrow > 0) assertLt((escrow - 1) * 1000, price * energy, "by at most one unit of rounding");
    }

    function test_submitOrders_chainsEachIntervalSeparatelyInOneBatch() public {
        CellKeys memory a = newCell(CellType.Prosumer);
        CellKeys memory b = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.Order memory a0 = order(a.id, t, Side.Sell, 10, ASK, 0);
        IClearingPool.Order memory b0 = order(b.id, t + 1, Side.Sell, 20, ASK, 0);
        IClearingPool.Order memory a1 = order(a.id, t, Side.Sell, 30, ASK, 1);
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](3);
        batch[0] = sign(a.agentKey, a0);
        batch[1] = sign(b.agentKey, b0);
        batch[2] = sign(a.agentKey, a1);
        pool.submitOrders(batch);

        bytes32 chainT = keccak256(abi.encode(keccak256(abi.encode(bytes32(0), _structHash(a0))), _structHash(a1)));
        assertEq(pool.intervalOf(t).orderChain, chainT, "interval t");
        assertEq(pool.intervalOf(t).orderCount, 2, "two orders in t");
        assertEq(pool.intervalOf(t + 1).orderChain, keccak256(abi.encode(bytes32(0), _structHash(b0))), "t + 1");
        assertEq(pool.intervalOf(t + 1).orderCount, 1, "one order in t + 1");
    }

    function test_submitOrders_acceptsOrderOneSecondBeforeGate() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        (uint256 gate,,,) = _times(t);
        vm.warp(gate - 1);
        submit(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0));
        assertEq(pool.intervalOf(t).orderCount, 1, "accepted");
    }

    function test_submitOrders_revertsWithGateClosed() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        (uint256 gate,,,) = _times(t);
        vm.warp(gate);
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolGateClosed.selector, t, gate));
        pool.submitOrders(batch);
    }

    function test_submitOrders_acceptsOrderAtExpiry() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.Order memory o = order(k.id, nextInterval(), Side.Sell, 100, ASK, 0);
        o.expiry = uint64(block.timestamp);
        submit(k.agentKey, o);
        assertEq(pool.positionOf(o.interval, k.id).orderCount, 1, "accepted");
    }

    function test_submitOrders_revertsWithOrderExpired() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.Order memory o = order(k.id, nextInterval(), Side.Sell, 100, ASK, 0);
        o.expiry = uint64(block.timestamp - 1);
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, o));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderExpired.selector, k.id, 0, o.expiry));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithInvalidSignatureAtItsIndex() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder memory good = sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0));
        IClearingPool.SignedOrder memory bad = sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 1));
        bad.r = bytes32(0);
        IClearingPool.SignedOrder[] memory batch = _batch(good, bad);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 1));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithNotAgentWhenSignedByMeter() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.meterKey, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, k.meter));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithNotAgentAfterAgentRotated() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.prank(k.owner);
        registry.setAgent(k.id, stranger);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, k.agent));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithUnknownCell() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id + 1, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, k.id + 1));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithCellNotConnected() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        vm.prank(k.owner);
        registry.disconnect(k.id);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 100, BID, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolCellNotConnected.selector, k.id));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithRoleNotAllowedWhenPassiveConsumerSells() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingPool.PoolRoleNotAllowed.selector, k.id, CellType.PassiveConsumer, Side.Sell)
        );
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithRoleNotAllowedWhenLoadFollowingGeneratorBuys() public {
        CellKeys memory k = newCell(CellType.LoadFollowingGenerator);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 100, BID, 0)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IClearingPool.PoolRoleNotAllowed.selector, k.id, CellType.LoadFollowingGenerator, Side.Buy
            )
        );
        pool.submitOrders(batch);
    }

    /// IDEA Table 2, energy column, as ARCHITECTURE.md writes it: "S", "S", "S B", "S B", "B", "B".
    function _tableAllows(uint256 cellType, Side side) private pure returns (bool) {
        bool[6] memory sells = [true, true, true, true, false, false];
        bool[6] memory buys = [false, false, true, true, true, true];
        return side == Side.Sell ? sells[cellType] : buys[cellType];
    }

    function testFuzz_submitOrders_enforcesIdeaEnergyRoles(uint256 rawType, bool isSell) public {
        uint256 typeIndex = bound(rawType, 0, 5);
        Side side = isSell ? Side.Sell : Side.Buy;
        CellKeys memory k = newCell(CellType(typeIndex));
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, side, 100, ASK, 0)));
        if (!_tableAllows(typeIndex, side)) {
            vm.expectRevert(
                abi.encodeWithSelector(IClearingPool.PoolRoleNotAllowed.selector, k.id, CellType(typeIndex), side)
            );
        }
        pool.submitOrders(batch);
        assertEq(pool.positionOf(t, k.id).orderCount, _tableAllows(typeIndex, side) ? 1 : 0, "booked iff allowed");
    }

    function test_submitOrders_revertsWithZeroEnergy() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 0, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolZeroEnergy.selector, k.id, 0));
        pool.submitOrders(batch);
    }

    function test_submitOrders_acceptsEnergyAtConnectionLimit() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Buy, uint64(LIMIT_WH), BID, 0));
        assertEq(pool.positionOf(t, k.id).orderedWh, 25_000, "100 kW * 900 s / 3600");
    }

    function test_submitOrders_revertsWithEnergyOverLimit() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 25_001, BID, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, 25_001, 25_000));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithEnergyOverLimitWhenOrdersAddUp() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Sell, 20_000, ASK, 0));
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 5_001, ASK, 1)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, 25_001, 25_000));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithEnergyOverLimitWhenSellAboveExportLimit() public {
        CellKeys memory k = newCell(CellType.Prosumer, 100_000, 3_600, FUNDS);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t + 1, Side.Buy, 25_000, BID, 0));
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 901, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, 901, 900));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithEnergyOverLimitRoundedDown() public {
        CellKeys memory k = newCell(CellType.Prosumer, 1_001, 1_001, FUNDS);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 251, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, 251, 250));
        pool.submitOrders(batch);
    }

    function testFuzz_submitOrders_limitsEnergyToMaxWTimesIntervalOver3600(uint256 maxW, uint256 energy) public {
        maxW = bound(maxW, 1, type(uint32).max);
        uint256 limitWh = maxW * INTERVAL / 3600;
        energy = bound(energy, 1, limitWh + 10);
        CellKeys memory k = newCell(CellType.StochasticGenerator, 1, uint32(maxW), 0);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, t, Side.Sell, uint64(energy), ASK, 0)));
        if (energy > limitWh) {
            vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, energy, limitWh));
        }
        pool.submitOrders(batch);
        assertEq(pool.positionOf(t, k.id).orderedWh, energy > limitWh ? 0 : energy, "ordered");
    }

    function test_submitOrders_revertsWithBadNonceWhenNonceSkipsAhead() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 1)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, k.id, t, 1, 0));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithBadNonceWhenOrderResubmitted() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0)));
        pool.submitOrders(batch);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, k.id, t, 0, 1));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithBadNonceAfterSixteenOrders() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](16);
        for (uint32 i = 0; i < 16; ++i) {
            batch[i] = sign(k.agentKey, order(k.id, t, Side.Sell, 1, ASK, i));
        }
        pool.submitOrders(batch);
        assertEq(pool.positionOf(t, k.id).orderCount, 16, "sixteen orders");
        IClearingPool.SignedOrder[] memory extra = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 1, ASK, 16)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, k.id, t, 16, 16));
        pool.submitOrders(extra);
    }

    function test_submitOrders_revertsWithOrderIsCancelledWhenNonceCancelledBeforeSubmission() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0)));
        vm.prank(k.agent);
        pool.cancelOrder(k.id, t, 0);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderIsCancelled.selector, k.id, t, 0));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithSideConflict() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0));
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Buy, 100, BID, 1)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolSideConflict.selector, k.id, t, Side.Buy));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithTooManyOrders() public {
        ClearingPool small = new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, 2);
        wallets.addMarket(address(small));
        CellKeys memory a = newCell(CellType.Prosumer);
        CellKeys memory b = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](3);
        for (uint32 i = 0; i < 2; ++i) {
            IClearingPool.Order memory o = order(a.id, t, Side.Sell, 1, ASK, i);
            (batch[i].r, batch[i].vs) = vm.signCompact(a.agentKey, small.hashOrder(o));
            batch[i].order = o;
        }
        IClearingPool.Order memory third = order(b.id, t, Side.Buy, 1, BID, 0);
        (batch[2].r, batch[2].vs) = vm.signCompact(b.agentKey, small.hashOrder(third));
        batch[2].order = third;
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolTooManyOrders.selector, t, 2));
        small.submitOrders(batch);

        IClearingPool.SignedOrder[] memory two = new IClearingPool.SignedOrder[](2);
        two[0] = batch[0];
        two[1] = batch[1];
        small.submitOrders(two);
        assertEq(small.intervalOf(t).orderCount, 2, "the bound itself is accepted");
        assertEq(small.intervalOf(t + 1).orderCount, 0, "the bound is per interval");
    }

    function test_submitOrders_revertsWithDailyCapExceeded() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        _setCap(k, 400_000);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Buy, 1000, BID, 0)); // locks 300,000
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Buy, 400, BID, 1)));
        vm.expectRevert(
            abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, k.id, 400_000, 300_000, 120_000)
        );
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithInsufficientBalance() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer, LIMIT_W, LIMIT_W, 0);
        _setCap(k, type(uint256).max);
        token.faucet(k.owner, 1_000);
        vm.startPrank(k.owner);
        token.approve(address(wallets), 1_000);
        wallets.deposit(k.id, 1_000);
        vm.stopPrank();
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 800, BID, 0)));
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletInsufficientBalance.selector, k.id, 1_000, 240_000));
        pool.submitOrders(batch);
    }

    // cancelOrder

    function test_cancelOrder_byAgentSetsCancelBitAndEmits() public {
        Two memory m = _twoParty();
        vm.expectEmit(address(pool));
        emit IClearingPool.OrderCancelled(m.t, m.buyer.id, 0);
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
        assertEq(pool.positionOf(m.t, m.buyer.id).cancelMask, 1, "bit 0");
        assertEq(locked(m.buyer.id), 300_000, "escrow stays locked until the claim");
    }

    function test_cancelOrder_byOwnerSetsCancelBit() public {
        Two memory m = _twoParty();
        vm.prank(m.buyer.owner);
        pool.cancelOrder(m.buyer.id, m.t, 5);
        assertEq(pool.positionOf(m.t, m.buyer.id).cancelMask, 1 << 5, "bit 5: a future nonce is forbidden");
    }

    function test_cancelOrder_revertsWithNotCellController() public {
        Two memory m = _twoParty();
        vm.expectRevert(
            abi.encodeWithSelector(IClearingPool.PoolNotCellController.selector, m.buyer.id, m.seller.agent)
        );
        vm.prank(m.seller.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
    }

    function test_cancelOrder_revertsWithGateClosed() public {
        Two memory m = _twoParty();
        (uint256 gate,,,) = _times(m.t);
        vm.warp(gate);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolGateClosed.selector, m.t, gate));
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
    }

    function test_cancelOrder_revertsWithBadNonceWhenNonceAboveFifteen() public {
        Two memory m = _twoParty();
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, m.buyer.id, m.t, 16, 15));
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 16);
    }

    function test_cancelOrder_revertsWithOrderIsCancelledWhenCancelledTwice() public {
        Two memory m = _twoParty();
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderIsCancelled.selector, m.buyer.id, m.t, 0));
        vm.prank(m.buyer.owner);
        pool.cancelOrder(m.buyer.id, m.t, 0);
    }

    /// Nonces are sequential, so revoking a signed order that was never submitted also ends
    /// the cell's bidding for the interval: the revoked nonce is refused and no later nonce
    /// can come before it.
    /// Revoking a signed order that was never submitted refuses it, and the cell's next order
    /// takes the following nonce.
    function test_cancelOrder_skipsUnsubmittedNonceForLaterOrders() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 0));
        vm.prank(k.agent);
        pool.cancelOrder(k.id, t, 1);
        IClearingPool.SignedOrder[] memory revoked = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 1)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderIsCancelled.selector, k.id, t, 1));
        pool.submitOrders(revoked);
        IClearingPool.SignedOrder[] memory skipped = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 3)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, k.id, t, 3, 2));
        pool.submitOrders(skipped);
        submit(k.agentKey, order(k.id, t, Side.Sell, 100, ASK, 2));
        assertEq(pool.positionOf(t, k.id).orderedWh, 200, "orders 0 and 2 are booked");
        assertEq(pool.intervalOf(t).orderCount, 2, "two orders in the interval's chain");
    }

    /// The connection limit counts every order submitted for the interval, cancelled or not.
    function test_submitOrders_countsCancelledOrdersAgainstConnectionLimit() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        uint64 t = nextInterval();
        submit(k.agentKey, order(k.id, t, Side.Sell, 20_000, ASK, 0));
        vm.prank(k.agent);
        pool.cancelOrder(k.id, t, 0);
        IClearingPool.SignedOrder[] memory batch = _batch(sign(k.agentKey, order(k.id, t, Side.Sell, 5_001, ASK, 1)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolEnergyOverLimit.selector, k.id, 25_001, 25_000));
        pool.submitOrders(batch);
    }

    function test_cancelOrder_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellRegistry.RegistryUnknownCell.selector, 42));
        pool.cancelOrder(42, nextInterval(), 0);
    }

    function test_cancelOrder_excludesOrderAndRefundsItsEscrowAtClaim() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = _list(
            order(seller.id, t, Side.Sell, 1000, ASK, 0),
            order(buyer.id, t, Side.Buy, 500, BID, 0),
            order(buyer.id, t, Side.Buy, 500, BID, 1)
        );
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        submit(buyer.agentKey, orders[2]);
        assertEq(locked(buyer.id), 300_000, "two escrows of 150,000");
        vm.prank(buyer.agent);
        pool.cancelOrder(buyer.id, t, 1);

        warpToGateClosure(t);
        // With 500 Wh of demand against 1000 Wh of supply the price falls to the ask.
        pool.clear(t, ASK, ASK, orders);
        assertEq(pool.intervalOf(t).volumeWh, 500, "the cancelled order did not trade");
        assertEq(pool.positionOf(t, buyer.id).filledWh, 500, "buyer filled by the live order");

        warpToDeliveryEnd(t);
        pool.settle(_readings(reading(seller, t, 0, 500, 1), reading(buyer, t, 500, 0, 1)));
        pool.claim(t, cells(buyer.id, seller.id));
        assertEq(_paid(buyer), 50_000, "500 Wh at 100,000/kWh; the cancelled escrow came back");
        assertEq(_received(seller), 50_000, "seller");
    }

    function test_cancelOrder_refundsEscrowWhenOnlyOrderCancelled() public {
        Two memory m = _twoParty();
        vm.prank(m.buyer.owner);
        pool.cancelOrder(m.buyer.id, m.t, 0);
        warpToGateClosure(m.t);
        pool.clear(m.t, 0, 0, m.orders); // the book has no buy left: no trade
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.buyer.id, Side.Buy, 0, 0, 300_000);
        pool.claim(m.t, cells(m.buyer.id));
        assertEq(available(m.buyer.id), FUNDS, "escrow back");
        assertEq(locked(m.buyer.id), 0, "nothing locked");
    }

    // clear

    function test_clear_setsPriceVolumeAndSchedule() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectEmit(address(pool));
        emit IClearingPool.CellScheduled(m.t, m.seller.id, Side.Sell, 1000);
        vm.expectEmit(address(pool));
        emit IClearingPool.CellScheduled(m.t, m.buyer.id, Side.Buy, 1000);
        vm.expectEmit(address(pool));
        emit IClearingPool.IntervalCleared(m.t, MID, 1000, 2, 2);
        vm.prank(stranger); // anyone clears
        pool.clear(m.t, ASK, BID, m.orders);

        IClearingPool.Interval memory s = pool.intervalOf(m.t);
        assertTrue(s.cleared, "cleared");
        assertEq(s.price, MID, "midpoint of [ASK, BID]");
        assertEq(s.volumeWh, 1000, "volume");
        assertEq(s.scheduledCells, 2, "scheduled cells");
        assertEq(s.buyersUnpaid, 1, "one buyer to pay");
        assertEq(pool.positionOf(m.t, m.seller.id).filledWh, 1000, "seller filled");
        assertEq(pool.positionOf(m.t, m.buyer.id).filledWh, 1000, "buyer filled");
        assertEq(pool.positionOf(m.t, m.buyer.id).flags, SCHEDULED, "scheduled flag");
    }

    function test_clear_roundsMidpointDown() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders =
            _list(order(seller.id, t, Side.Sell, 100, 10, 0), order(buyer.id, t, Side.Buy, 100, 13, 0));
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        warpToGateClosure(t);
        pool.clear(t, 10, 13, orders);
        assertEq(pool.intervalOf(t).price, 11, "(10 + 13) / 2 rounded down");
    }

    function test_clear_revertsWithGateOpen() public {
        Two memory m = _twoParty();
        (uint256 gate,,,) = _times(m.t);
        vm.warp(gate - 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolGateOpen.selector, m.t, gate));
        pool.clear(m.t, ASK, BID, m.orders);
    }

    function test_clear_acceptsLastSecondBeforeDelivery() public {
        Two memory m = _twoParty();
        (, uint256 start,,) = _times(m.t);
        vm.warp(start - 1);
        pool.clear(m.t, ASK, BID, m.orders);
        assertTrue(pool.intervalOf(m.t).cleared, "cleared");
    }

    function test_clear_revertsWithClearingTooLate() public {
        Two memory m = _twoParty();
        (, uint256 start,,) = _times(m.t);
        vm.warp(start);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolClearingTooLate.selector, m.t, start));
        pool.clear(m.t, ASK, BID, m.orders);
    }

    function test_clear_revertsWithAlreadyCleared() public {
        Two memory m = _twoPartyCleared();
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolAlreadyCleared.selector, m.t));
        pool.clear(m.t, ASK, BID, m.orders);
    }

    function test_clear_revertsWithOrderSetMismatchWhenOrderDropped() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 1, 2));
        pool.clear(m.t, ASK, ASK, _list(m.orders[0]));
    }

    function test_clear_revertsWithOrderSetMismatchWhenOrderAltered() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        m.orders[1].energyWh = 999;
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 2, 2));
        pool.clear(m.t, ASK, BID, m.orders);
    }

    function test_clear_revertsWithOrderSetMismatchWhenOrdersReordered() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 2, 2));
        pool.clear(m.t, ASK, BID, _list(m.orders[1], m.orders[0]));
    }

    function test_clear_revertsWithOrderSetMismatchWhenOrderAdded() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        IClearingPool.Order memory forged = order(m.buyer.id, m.t, Side.Buy, 1000, BID, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 3, 2));
        pool.clear(m.t, ASK, BID, _list(m.orders[0], m.orders[1], forged));
    }

    function test_clear_revertsWithOrderSetMismatchWhenCancelledOrderLeftOut() public {
        Two memory m = _twoParty();
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 1, 2));
        pool.clear(m.t, 0, 0, _list(m.orders[0]));
    }

    function test_clear_revertsWithPriceNotClearingWhenLowBelowInterval() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, m.t, ASK - 1, BID));
        pool.clear(m.t, ASK - 1, BID, m.orders);
    }

    function test_clear_revertsWithPriceNotClearingWhenLowAboveIntervalStart() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, m.t, ASK + 1, BID));
        pool.clear(m.t, ASK + 1, BID, m.orders);
    }

    function test_clear_revertsWithPriceNotClearingWhenHighAboveInterval() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, m.t, ASK, BID + 1));
        pool.clear(m.t, ASK, BID + 1, m.orders);
    }

    function test_clear_revertsWithPriceNotClearingWhenHighBelowIntervalEnd() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, m.t, ASK, BID - 1));
        pool.clear(m.t, ASK, BID - 1, m.orders);
    }

    function test_clear_revertsWithPriceNotClearingWhenBoundsSwapped() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, m.t, BID, ASK));
        pool.clear(m.t, BID, ASK, m.orders);
    }

    function test_clear_recordsNoTradeWhenBooksDoNotCross() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders =
            _list(order(seller.id, t, Side.Sell, 1000, BID, 0), order(buyer.id, t, Side.Buy, 1000, ASK, 0));
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        warpToGateClosure(t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, t, ASK, BID));
        pool.clear(t, ASK, BID, orders);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, t, 0, 1));
        pool.clear(t, 0, 1, orders);

        vm.expectEmit(address(pool));
        emit IClearingPool.IntervalCleared(t, 0, 0, 2, 0);
        pool.clear(t, 0, 0, orders);
        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertTrue(s.cleared, "cleared without trade");
        assertEq(s.price, 0, "price recorded as 0");
        assertEq(s.scheduledCells, 0, "nobody scheduled");
        assertEq(pool.positionOf(t, buyer.id).flags, 0, "buyer unscheduled");
    }

    function test_clear_requiresZeroBoundsWhenBookOneSided() public {
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = _list(order(buyer.id, t, Side.Buy, 1000, BID, 0));
        submit(buyer.agentKey, orders[0]);
        warpToGateClosure(t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, t, BID, BID));
        pool.clear(t, BID, BID, orders);
        pool.clear(t, 0, 0, orders);
        assertEq(pool.intervalOf(t).volumeWh, 0, "no trade");
    }

    function test_clear_clearsEmptyInterval() public {
        uint64 t = nextInterval();
        warpToGateClosure(t);
        pool.clear(t, 0, 0, new IClearingPool.Order[](0));
        assertTrue(pool.intervalOf(t).cleared, "an empty interval clears at 0");
    }

    // pro-rata rationing

    function test_clear_rationsMarginalSellsProRata() public {
        CellKeys[3] memory s;
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        uint64[3] memory energy = [uint64(700), 500, 300];
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](4);
        for (uint256 i = 0; i < 3; ++i) {
            s[i] = newCell(CellType.StochasticGenerator);
            orders[i] = order(s[i].id, t, Side.Sell, energy[i], ASK, 0);
            submit(s[i].agentKey, orders[i]);
        }
        orders[3] = order(buyer.id, t, Side.Buy, 1000, BID, 0);
        submit(buyer.agentKey, orders[3]);
        warpToGateClosure(t);
        pool.clear(t, ASK, ASK, orders);
        // 1000 Wh shared among 1500 Wh at the price, cumulative floors: 466 | 800 | 1000.
        assertEq(pool.positionOf(t, s[0].id).filledWh, 466, "700 * 2/3 = 466.67");
        assertEq(pool.positionOf(t, s[1].id).filledWh, 334, "500 * 2/3 = 333.33");
        assertEq(pool.positionOf(t, s[2].id).filledWh, 200, "300 * 2/3 = 200");
        assertEq(pool.positionOf(t, buyer.id).filledWh, 1000, "buyer in full");
        assertEq(pool.intervalOf(t).price, ASK, "price");
    }

    function test_clear_rationsMarginalBuysProRata() public {
        CellKeys[3] memory b;
        CellKeys memory seller = newCell(CellType.LoadFollowingGenerator);
        uint64 t = nextInterval();
        uint64[3] memory energy = [uint64(700), 500, 300];
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](4);
        orders[0] = order(seller.id, t, Side.Sell, 1000, 50_000, 0);
        submit(seller.agentKey, orders[0]);
        for (uint256 i = 0; i < 3; ++i) {
            b[i] = newCell(CellType.ActiveConsumer);
            orders[i + 1] = order(b[i].id, t, Side.Buy, energy[i], ASK, 0);
            submit(b[i].agentKey, orders[i + 1]);
        }
        warpToGateClosure(t);
        pool.clear(t, ASK, ASK, orders);
        assertEq(pool.positionOf(t, b[0].id).filledWh, 466, "700 * 2/3");
        assertEq(pool.positionOf(t, b[1].id).filledWh, 334, "500 * 2/3");
        assertEq(pool.positionOf(t, b[2].id).filledWh, 200, "300 * 2/3");
        assertEq(pool.positionOf(t, seller.id).filledWh, 1000, "seller in full");
    }

    function test_clear_fillsInTheMoneyFullyAndRationsOnlyMarginal() public {
        CellKeys memory s0 = newCell(CellType.Prosumer);
        CellKeys memory s1 = newCell(CellType.Prosumer);
        CellKeys memory s2 = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](4);
        orders[0] = order(s1.id, t, Side.Sell, 1000, ASK, 0);
        orders[1] = order(s0.id, t, Side.Sell, 400, 50_000, 0);
        orders[2] = order(s2.id, t, Side.Sell, 1000, ASK, 0);
        orders[3] = order(buyer.id, t, Side.Buy, 1001, MID, 0);
        submit(s1.agentKey, orders[0]);
        submit(s0.agentKey, orders[1]);
        submit(s2.agentKey, orders[2]);
        submit(buyer.agentKey, orders[3]);
        warpToGateClosure(t);
        ReferenceAuction.Outcome memory out = clearAtReference(t, orders);
        assertEq(out.priceLow, ASK, "reference low");
        assertEq(out.priceHigh, ASK, "reference high");
        assertEq(pool.positionOf(t, s0.id).filledWh, 400, "below the price: in full");
        // 601 Wh left for 2000 Wh at the price, in submission order: floor(300.5) then the rest.
        assertEq(pool.positionOf(t, s1.id).filledWh, 300, "first marginal");
        assertEq(pool.positionOf(t, s2.id).filledWh, 301, "second marginal");
        assertEq(pool.positionOf(t, buyer.id).filledWh, 1001, "buyer");
    }

    struct FuzzBook {
        uint256 n;
        CellKeys[] keys;
        IClearingPool.Order[] orders;
    }

    function testFuzz_clear_matchesReferenceAuction(uint256 seed, uint256 count) public {
        FuzzBook memory f;
        f.n = bound(count, 1, 6);
        f.keys = new CellKeys[](f.n);
        f.orders = new IClearingPool.Order[](f.n);
        uint64 t = nextInterval();
        for (uint256 i = 0; i < f.n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            f.keys[i] = newCell(CellType.Prosumer);
            // Few distinct prices so that ties and rationing are common.
            f.orders[i] = order(
                f.keys[i].id,
                t,
                r % 2 == 0 ? Side.Buy : Side.Sell,
                uint64(1 + (r >> 8) % 5000),
                uint96((r >> 32) % 6),
                0
            );
            submit(f.keys[i].agentKey, f.orders[i]);
            if ((r >> 64) % 5 == 0) {
                vm.prank(f.keys[i].agent);
                pool.cancelOrder(f.keys[i].id, t, 0);
            }
        }
        warpToGateClosure(t);
        ReferenceAuction.Outcome memory out = clearAtReference(t, f.orders);
        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertEq(s.price, out.price, "price");
        assertEq(s.volumeWh, out.volume, "volume");
        uint256 bought;
        uint256 sold;
        for (uint256 i = 0; i < f.n; ++i) {
            uint256 filled = pool.positionOf(t, f.keys[i].id).filledWh;
            assertEq(filled, out.fills[i], "fill");
            assertLe(filled, f.orders[i].energyWh, "never above the order");
            if (f.orders[i].side == Side.Buy) bought += filled;
            else sold += filled;
        }
        assertEq(bought, s.volumeWh, "buy fills add up to the volume");
        assertEq(sold, s.volumeWh, "sell fills add up to the volume");
    }

    // settle

    function test_settle_recordsReadingAndEmits() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 7);
        vm.expectEmit(address(pool));
        emit IClearingPool.ReadingAccepted(m.t, m.seller.id, m.seller.meter, 7, 0, 1000, 1000);
        vm.prank(stranger); // anyone relays readings
        settleOne(r);
        IClearingPool.Position memory p = pool.positionOf(m.t, m.seller.id);
        assertEq(p.deliveredWh, 1000, "delivered");
        assertEq(p.flags, SCHEDULED | REPORTED, "reported");
        IClearingPool.Interval memory s = pool.intervalOf(m.t);
        assertEq(s.reportedCells, 1, "one reported");
        assertEq(s.sellDeliveredWh, 1000, "sell delivered");
        assertEq(s.buyDeliveredWh, 0, "no buyer yet");
    }

    function test_settle_recordsBuyerTotals() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.buyer, m.t, 600, 0, 1));
        IClearingPool.Interval memory s = pool.intervalOf(m.t);
        assertEq(s.buyDeliveredWh, 600, "buy delivered");
        assertEq(s.buyReportedScheduledWh, 1000, "schedule of the buyers that reported");
    }

    function test_settle_revertsWithDeliveryNotEnded() public {
        Two memory m = _twoPartyCleared();
        (,, uint256 end,) = _times(m.t);
        vm.warp(end - 1);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolDeliveryNotEnded.selector, m.t, end));
        settleOne(r);
    }

    function test_settle_acceptsLastSecondOfWindow() public {
        Two memory m = _twoPartyCleared();
        (,,, uint256 windowEnd) = _times(m.t);
        vm.warp(windowEnd - 1);
        settleOne(reading(m.seller, m.t, 0, 1000, 1));
        assertEq(pool.intervalOf(m.t).reportedCells, 1, "accepted");
    }

    function test_settle_revertsWithSettlementWindowClosed() public {
        Two memory m = _twoPartyCleared();
        (,,, uint256 windowEnd) = _times(m.t);
        vm.warp(windowEnd);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolSettlementWindowClosed.selector, m.t, windowEnd));
        settleOne(r);
    }

    function test_settle_revertsWithNotClearedWhenIntervalVoid() public {
        Two memory m = _twoParty();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotCleared.selector, m.t));
        settleOne(r);
    }

    function test_settle_revertsWithInvalidSignatureAtItsIndex() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory good = reading(m.seller, m.t, 0, 1000, 1);
        IClearingPool.SignedReading memory bad = reading(m.buyer, m.t, 1000, 0, 1);
        (bad.r, bad.vs) = vm.signCompact(m.buyer.agentKey, pool.hashReading(bad.reading));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 1));
        pool.settle(_readings(good, bad));
    }

    function test_settle_revertsWithMeterNotInCellWhenMeterServesAnotherCell() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.buyer, m.t, 0, 1000, 1);
        r.reading.cell = m.seller.id; // the buyer's meter speaking for the seller
        (r.r, r.vs) = vm.signCompact(m.buyer.meterKey, pool.hashReading(r.reading));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolMeterNotInCell.selector, m.buyer.meter, m.seller.id));
        settleOne(r);
    }

    function test_settle_revertsWithMeterNotInCellWhenKeyRemoved() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.prank(m.seller.owner);
        registry.removeMeter(m.seller.id, m.seller.meter);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolMeterNotInCell.selector, m.seller.meter, m.seller.id));
        settleOne(r);
    }

    function test_settle_revertsWithNothingScheduledWhenOrderUnfilled() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        CellKeys memory lowBidder = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = _list(
            order(seller.id, t, Side.Sell, 1000, ASK, 0),
            order(buyer.id, t, Side.Buy, 1000, BID, 0),
            order(lowBidder.id, t, Side.Buy, 1000, ASK - 1, 0)
        );
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        submit(lowBidder.agentKey, orders[2]);
        warpToGateClosure(t);
        pool.clear(t, ASK, BID, orders);
        warpToDeliveryEnd(t);
        IClearingPool.SignedReading memory r = reading(lowBidder, t, 1000, 0, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNothingScheduled.selector, t, lowBidder.id));
        settleOne(r);
    }

    function test_settle_revertsWithNothingScheduledWhenCellHasNoOrder() public {
        Two memory m = _twoPartyCleared();
        CellKeys memory idle = newCell(CellType.Prosumer);
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(idle, m.t, 0, 500, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNothingScheduled.selector, m.t, idle.id));
        settleOne(r);
    }

    function test_settle_ignoresSecondReadingOfCell() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.seller, m.t, 0, 400, 1));
        vm.recordLogs();
        settleOne(reading(m.seller, m.t, 0, 1000, 2));
        assertEq(vm.getRecordedLogs().length, 0, "no event for the ignored reading");
        assertEq(pool.positionOf(m.t, m.seller.id).deliveredWh, 400, "first reading stands");
        assertEq(pool.intervalOf(m.t).reportedCells, 1, "counted once");
        assertEq(pool.intervalOf(m.t).sellDeliveredWh, 400, "summed once");
    }

    function test_settle_capsSellerAtSchedule() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        vm.expectEmit(address(pool));
        emit IClearingPool.ReadingAccepted(m.t, m.seller.id, m.seller.meter, 1, 0, 1500, 1000);
        settleOne(reading(m.seller, m.t, 0, 1500, 1));
        assertEq(pool.positionOf(m.t, m.seller.id).deliveredWh, 1000, "capped at the schedule");
    }

    function test_settle_capsBuyerAtSchedule() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.buyer, m.t, 1200, 0, 1));
        assertEq(pool.positionOf(m.t, m.buyer.id).deliveredWh, 1000, "capped at the schedule");
    }

    function test_settle_countsNetExportForSeller() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.seller, m.t, 300, 1100, 1));
        assertEq(pool.positionOf(m.t, m.seller.id).deliveredWh, 800, "1100 - 300");
    }

    function test_settle_countsNetImportForBuyer() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.buyer, m.t, 900, 200, 1));
        assertEq(pool.positionOf(m.t, m.buyer.id).deliveredWh, 700, "900 - 200");
    }

    function test_settle_countsZeroWhenFlowOpposesTrade() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        pool.settle(_readings(reading(m.seller, m.t, 500, 100, 1), reading(m.buyer, m.t, 100, 500, 1)));
        assertEq(pool.positionOf(m.t, m.seller.id).deliveredWh, 0, "seller imported on balance");
        assertEq(pool.positionOf(m.t, m.buyer.id).deliveredWh, 0, "buyer exported on balance");
        assertEq(pool.intervalOf(m.t).reportedCells, 2, "both count as reported");
    }

    // claim

    function test_claim_revertsWithIntervalOpenBeforeDeliveryWhenNotCleared() public {
        Two memory m = _twoParty();
        (, uint256 start,,) = _times(m.t);
        vm.warp(start - 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolIntervalOpen.selector, m.t));
        pool.claim(m.t, cells(m.buyer.id));
    }

    function test_claim_refundsEscrowWhenIntervalVoid() public {
        Two memory m = _twoParty();
        (, uint256 start,,) = _times(m.t);
        vm.warp(start);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.buyer.id, Side.Buy, 0, 0, 300_000);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.seller.id, Side.Sell, 0, 0, 0);
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        assertEq(available(m.buyer.id), FUNDS, "escrow back");
        assertEq(locked(m.buyer.id), 0, "nothing locked");
        assertEq(available(m.seller.id), FUNDS, "seller unchanged");
        assertEq(pool.positionOf(m.t, m.buyer.id).flags, CLAIMED, "claimed");
    }

    function test_claim_refundsUnfilledPositionRightAfterClearing() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        CellKeys memory lowBidder = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = _list(
            order(seller.id, t, Side.Sell, 1000, ASK, 0),
            order(buyer.id, t, Side.Buy, 1000, BID, 0),
            order(lowBidder.id, t, Side.Buy, 1000, ASK - 1, 0)
        );
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        submit(lowBidder.agentKey, orders[2]);
        assertEq(locked(lowBidder.id), 99_999, "escrow of the low bid");
        warpToGateClosure(t);
        pool.clear(t, ASK, BID, orders);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(t, lowBidder.id, Side.Buy, 0, 0, 99_999);
        pool.claim(t, cells(lowBidder.id));
        assertEq(available(lowBidder.id), FUNDS, "refunded before delivery even starts");
    }

    function test_claim_revertsWithSettlementPendingUntilAllReport() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.seller, m.t, 0, 1000, 1));
        (,,, uint256 windowEnd) = _times(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolSettlementPending.selector, m.t, 1, 2, windowEnd));
        pool.claim(m.t, cells(m.buyer.id));
    }

    function test_claim_revertsWithSettlementPendingBeforeDelivery() public {
        Two memory m = _twoPartyCleared();
        (,,, uint256 windowEnd) = _times(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolSettlementPending.selector, m.t, 0, 2, windowEnd));
        pool.claim(m.t, cells(m.seller.id));
    }

    function test_claim_paysDeliveredEnergyAtClearingPrice() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        pool.settle(_readings(reading(m.seller, m.t, 0, 1000, 1), reading(m.buyer, m.t, 1000, 0, 1)));
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.buyer.id, Side.Buy, 1000, 200_000, 100_000);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.seller.id, Side.Sell, 1000, 200_000, 0);
        vm.prank(stranger); // anyone pays out
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        assertEq(_paid(m.buyer), 200_000, "buyer paid 1000 Wh at 200,000/kWh");
        assertEq(_received(m.seller), 200_000, "seller received it");
        assertEq(wallets.marketBalance(address(pool)), 0, "pool keeps nothing");
        IClearingPool.Interval memory s = pool.intervalOf(m.t);
        assertEq(s.pot, 200_000, "pot");
        assertEq(s.paidOut, 200_000, "paid out");
        assertEq(s.buyersUnpaid, 0, "buyers paid");
    }

    function test_claim_revertsWithBuyersUnpaidWhenSellerClaimsFirst() public {
        Four memory m = _fourPartyCleared();
        warpToWindowEnd(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBuyersUnpaid.selector, m.t, 2));
        pool.claim(m.t, cells(m.s1.id));
        pool.claim(m.t, cells(m.b1.id));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBuyersUnpaid.selector, m.t, 1));
        pool.claim(m.t, cells(m.s1.id));
        pool.claim(m.t, cells(m.b2.id, m.s1.id));
        assertEq(pool.positionOf(m.t, m.s1.id).flags & CLAIMED, CLAIMED, "seller claimed once buyers paid");
    }

    function test_claim_revertsWithNoPosition() public {
        Two memory m = _twoPartyCleared();
        CellKeys memory idle = newCell(CellType.Prosumer);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNoPosition.selector, m.t, idle.id));
        pool.claim(m.t, cells(idle.id));
    }

    function test_claim_ignoresSecondClaim() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        pool.settle(_readings(reading(m.seller, m.t, 0, 1000, 1), reading(m.buyer, m.t, 1000, 0, 1)));
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        vm.recordLogs();
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        assertEq(vm.getRecordedLogs().length, 0, "nothing happened");
        assertEq(_paid(m.buyer), 200_000, "buyer paid once");
        assertEq(_received(m.seller), 200_000, "seller paid once");
    }

    function test_claim_paysSellerNothingWhenItsReadingIsMissing() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.s1, m.t, 0, 600, 1));
        settleOne(reading(m.b1, m.t, 700, 0, 1));
        settleOne(reading(m.b2, m.t, 300, 0, 1));
        warpToWindowEnd(m.t);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.s2.id, Side.Sell, 0, 0, 0);
        pool.claim(m.t, _cells4(m.b1.id, m.b2.id, m.s1.id, m.s2.id));
        // E = min(Qs = 600, Qb = 1000) = 600: buyers pay for 600 Wh pro rata, s1 gets it all.
        assertEq(_paid(m.b1), 84_000, "200000 * 700 * 600 / (1000 * 1000)");
        assertEq(_paid(m.b2), 36_000, "200000 * 300 * 600 / (1000 * 1000)");
        assertEq(_received(m.s1), 120_000, "600 Wh at the price");
        assertEq(_received(m.s2), 0, "no reading, no pay");
        assertEq(wallets.marketBalance(address(pool)), 0, "pot fully paid out");
    }

    function test_claim_chargesBuyerFullScheduleWhenItsReadingIsMissing() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.s1, m.t, 0, 600, 1));
        settleOne(reading(m.s2, m.t, 0, 400, 1));
        settleOne(reading(m.b1, m.t, 700, 0, 1));
        warpToWindowEnd(m.t);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.b2.id, Side.Buy, 300, 60_000, 30_000);
        _claimFour(m);
        assertEq(_paid(m.b2), 60_000, "full 300 Wh schedule at 200,000/kWh");
        assertEq(_paid(m.b1), 140_000, "700 Wh");
        assertEq(_received(m.s1), 120_000, "600 Wh");
        assertEq(_received(m.s2), 80_000, "400 Wh");
    }

    /// A missing buyer counts in Qb with its whole schedule, so it shares a supply shortfall
    /// pro rata instead of leaving it all to the buyers that reported.
    function test_claim_countsMissingBuyerAtFullScheduleInShortfall() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.s1, m.t, 0, 600, 1));
        settleOne(reading(m.s2, m.t, 0, 200, 1));
        settleOne(reading(m.b1, m.t, 700, 0, 1));
        warpToWindowEnd(m.t);
        _claimFour(m);
        // Qs = 800, Qb = 700 + 300 (b2's schedule) = 1000, E = 800.
        assertEq(_paid(m.b1), 112_000, "200000 * 700 * 800 / (1000 * 1000)");
        assertEq(_paid(m.b2), 48_000, "200000 * 300 * 800 / (1000 * 1000)");
        assertEq(_received(m.s1), 120_000, "600 Wh at the price");
        assertEq(_received(m.s2), 40_000, "200 Wh at the price");
    }

    function test_claim_chargesNothingWhenNoSellerDelivered() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.b1, m.t, 700, 0, 1));
        warpToWindowEnd(m.t);
        _claimFour(m);
        assertEq(_paid(m.b1), 0, "E = min(0, 1000) = 0");
        assertEq(_paid(m.b2), 0, "missing reading, but nothing was sold into the pool");
        assertEq(_received(m.s1), 0, "s1");
        assertEq(_received(m.s2), 0, "s2");
    }

    /// Qs = 900 > Qb = 850: buyers pay in full for what they took, sellers share it pro rata.
    function test_claim_sharesShortfallWhenSellersDeliverMoreThanBuyersTake() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.s1, m.t, 0, 500, 1));
        settleOne(reading(m.s2, m.t, 0, 400, 1));
        settleOne(reading(m.b1, m.t, 550, 0, 1));
        settleOne(reading(m.b2, m.t, 300, 0, 1));
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.b1.id, Side.Buy, 550, 110_000, 100_000);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.b2.id, Side.Buy, 300, 60_000, 30_000);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.s1.id, Side.Sell, 500, 94_444, 0);
        vm.expectEmit(address(pool));
        emit IClearingPool.PositionSettled(m.t, m.s2.id, Side.Sell, 400, 75_556, 0);
        _claimFour(m);
        assertEq(_paid(m.b1), 110_000, "550 Wh at 200,000/kWh");
        assertEq(_paid(m.b2), 60_000, "300 Wh at 200,000/kWh");
        assertEq(_received(m.s1), 94_444, "floor(500 * 170000 / 900)");
        assertEq(_received(m.s2), 75_556, "the rest of the pot");
        assertEq(pool.intervalOf(m.t).pot, 170_000, "pot");
        assertEq(pool.intervalOf(m.t).paidOut, 170_000, "paid out");
        assertEq(wallets.marketBalance(address(pool)), 0, "nothing left");
    }

    /// Qs = 750 < Qb = 950: buyers pay for 750 Wh pro rata, each seller gets the price.
    function test_claim_sharesShortfallWhenBuyersTakeMoreThanSellersDeliver() public {
        Four memory m = _fourPartyCleared();
        warpToDeliveryEnd(m.t);
        settleOne(reading(m.s1, m.t, 0, 400, 1));
        settleOne(reading(m.s2, m.t, 0, 350, 1));
        settleOne(reading(m.b1, m.t, 700, 0, 1));
        settleOne(reading(m.b2, m.t, 250, 0, 1));
        _claimFour(m);
        assertEq(_paid(m.b1), 110_526, "floor(200000 * 700 * 750 / (950 * 1000))");
        assertEq(_paid(m.b2), 39_473, "floor(200000 * 250 * 750 / (950 * 1000))");
        assertEq(pool.intervalOf(m.t).pot, 149_999, "one unit short of 750 Wh at the price, in the buyers' favour");
        assertEq(_received(m.s1), 79_999, "floor(400 * 149999 / 750)");
        assertEq(_received(m.s2), 70_000, "the rest of the pot");
        assertEq(wallets.marketBalance(address(pool)), 0, "nothing left");
    }

    // fuzz: one interval with random books and random readings

    struct Scenario {
        CellKeys[4] k; // 0, 1 sellers; 2, 3 buyers
        IClearingPool.Order[] orders;
        uint64 t;
        uint256 price;
    }

    function _runRandomInterval(
        uint256[4] memory energy,
        uint256[4] memory limit,
        uint256[8] memory meter,
        uint8 present
    ) private returns (Scenario memory sc) {
        sc.t = nextInterval();
        sc.orders = new IClearingPool.Order[](4);
        for (uint256 i = 0; i < 4; ++i) {
            bool isSell = i < 2;
            sc.k[i] = newCell(isSell ? CellType.StochasticGenerator : CellType.PassiveConsumer);
            // Overlapping ranges: most books cross, some do not.
            sc.orders[i] = order(
                sc.k[i].id,
                sc.t,
                isSell ? Side.Sell : Side.Buy,
                uint64(bound(energy[i], 1, LIMIT_WH)),
                uint96(isSell ? bound(limit[i], 0, 700_000) : bound(limit[i], 300_000, 1_000_000)),
                0
            );
            submit(sc.k[i].agentKey, sc.orders[i]);
        }
        warpToGateClosure(sc.t);
        sc.price = clearAtReference(sc.t, sc.orders).price;
        warpToDeliveryEnd(sc.t);
        for (uint256 i = 0; i < 4; ++i) {
            if (present & (1 << i) == 0) continue;
            if (pool.positionOf(sc.t, sc.k[i].id).flags & SCHEDULED == 0) continue;
            settleOne(
                reading(
                    sc.k[i], sc.t, uint64(bound(meter[2 * i], 0, 30_000)), uint64(bound(meter[2 * i + 1], 0, 30_000)), 1
                )
            );
        }
        warpToWindowEnd(sc.t);
        pool.claim(sc.t, _cells4(sc.k[2].id, sc.k[3].id, sc.k[0].id, sc.k[1].id));
    }

    function testFuzz_claim_buyerNeverPaysMoreThanLimitTimesEnergy(
        uint256[4] memory energy,
        uint256[4] memory limit,
        uint256[8] memory meter,
        uint8 present
    ) public {
        Scenario memory sc = _runRandomInterval(energy, limit, meter, present);
        for (uint256 i = 2; i < 4; ++i) {
            uint256 paid = _paid(sc.k[i]);
            IClearingPool.Position memory p = pool.positionOf(sc.t, sc.k[i].id);
            assertLe(paid * 1000, uint256(sc.orders[i].limitPrice) * sc.orders[i].energyWh, "pay <= limit * energy");
            assertLe(paid * 1000, sc.price * p.filledWh, "pay <= price * schedule");
        }
    }

    function testFuzz_claim_conservesMoneyForRandomReadings(
        uint256[4] memory energy,
        uint256[4] memory limit,
        uint256[8] memory meter,
        uint8 present
    ) public {
        Scenario memory sc = _runRandomInterval(energy, limit, meter, present);
        uint256 paid = _paid(sc.k[2]) + _paid(sc.k[3]);
        uint256 received;
        for (uint256 i = 0; i < 2; ++i) {
            uint256 got = _received(sc.k[i]);
            uint256 delivered = pool.positionOf(sc.t, sc.k[i].id).deliveredWh;
            assertLe(got, sc.price * delivered / 1000 + 1, "seller gets at most the price for what it delivered");
            received += got;
        }
        assertEq(received, paid, "sellers receive exactly what buyers paid");
        assertEq(wallets.marketBalance(address(pool)), 0, "the pool keeps nothing");
        assertEq(pool.intervalOf(sc.t).paidOut, pool.intervalOf(sc.t).pot, "pot paid out");
        assertEq(token.balanceOf(address(wallets)), 4 * FUNDS, "no token created or lost");
    }
}
