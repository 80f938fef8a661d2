// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICellWallets} from "../src/interfaces/ICellWallets.sol";
import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {ClearingPool} from "../src/ClearingPool.sol";
import {CellType, Side} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice What a dishonest relayer, clearer, counterparty or key holder can try against the
/// pool, and the exact refusal each attempt meets.
contract ClearingPoolAttacksTest is PoolFixture {
    /// secp256k1 group order and half of it (the largest s OpenZeppelin's ECDSA accepts).
    uint256 private constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// x of the generator: a valid r (a curve point has this x).
    uint256 private constant GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798;

    /// The address ecrecover yields for an EIP-2098 signature over `digest`.
    function _recoverCompact(bytes32 digest, bytes32 r, bytes32 vs) private pure returns (address) {
        uint8 v = uint8(uint256(vs) >> 255) + 27;
        bytes32 s = vs & bytes32(type(uint256).max >> 1);
        return ecrecover(digest, v, r, s);
    }

    function _signFor(ClearingPool target, uint256 key, IClearingPool.Order memory o)
        private
        view
        returns (IClearingPool.SignedOrder memory so)
    {
        (so.r, so.vs) = vm.signCompact(key, target.hashOrder(o));
        so.order = o;
    }

    // order replay

    function test_submitOrders_revertsWithBadNonceWhenOrderReplayedInSameInterval() public {
        Two memory m = _twoParty();
        IClearingPool.SignedOrder[] memory replay = _batch(sign(m.buyer.agentKey, m.orders[1]));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBadNonce.selector, m.buyer.id, m.t, 0, 1));
        vm.prank(stranger);
        pool.submitOrders(replay);
        assertEq(locked(m.buyer.id), 300_000, "escrow locked once");
    }

    function test_submitOrders_revertsWithNotAgentWhenOrderMovedToAnotherInterval() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder memory so = sign(k.agentKey, order(k.id, t, Side.Buy, 1000, BID, 0));
        so.order.interval = t + 1;
        address recovered = _recoverCompact(pool.hashOrder(so.order), so.r, so.vs);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, recovered));
        pool.submitOrders(_batch(so));
    }

    function test_submitOrders_revertsWithNotAgentWhenReplayedOnAnotherChain() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        IClearingPool.SignedOrder memory so = sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 1000, BID, 0));
        bytes32 domainBefore = pool.domainSeparator();
        vm.chainId(10);
        assertTrue(pool.domainSeparator() != domainBefore, "the domain names the chain");
        address recovered = _recoverCompact(pool.hashOrder(so.order), so.r, so.vs);
        assertTrue(recovered != k.agent, "the signature speaks for someone else here");
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, recovered));
        pool.submitOrders(_batch(so));
    }

    function test_submitOrders_revertsWithNotAgentWhenReplayedOnAnotherPool() public {
        ClearingPool twin = new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, MAX_ORDERS);
        wallets.addMarket(address(twin));
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        IClearingPool.SignedOrder memory so = sign(k.agentKey, order(k.id, nextInterval(), Side.Buy, 1000, BID, 0));
        address recovered = _recoverCompact(twin.hashOrder(so.order), so.r, so.vs);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, recovered));
        twin.submitOrders(_batch(so));

        // The same order signed for the twin is fine: only the domain was wrong.
        twin.submitOrders(_batch(_signFor(twin, k.agentKey, so.order)));
        assertEq(twin.positionOf(so.order.interval, k.id).orderCount, 1, "accepted when signed for this pool");
    }

    // orders signed by the wrong key

    function test_submitOrders_revertsWithNotAgentWhenSignedByOwner() public {
        uint256 ownerKey = 0x0E0E;
        address[] memory meters = new address[](0);
        uint256 id = registry.connect(vm.addr(ownerKey), CellType.Prosumer, 0, LIMIT_W, LIMIT_W, vm.addr(0xA6), meters);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(ownerKey, order(id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, id, vm.addr(ownerKey)));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithNotAgentWhenSignedByMeter() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(k.meterKey, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, k.meter));
        pool.submitOrders(batch);
    }

    function test_submitOrders_revertsWithNotAgentWhenSignedByRandomKey() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(0xBADBAD, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, vm.addr(0xBADBAD)));
        pool.submitOrders(batch);
    }

    /// A buyer's agent cannot spend another cell's wallet by naming that cell in its order.
    function test_submitOrders_revertsWithNotAgentWhenAnotherCellsAgentSigns() public {
        CellKeys memory victim = newCell(CellType.PassiveConsumer);
        CellKeys memory thief = newCell(CellType.PassiveConsumer);
        IClearingPool.SignedOrder[] memory batch =
            _batch(sign(thief.agentKey, order(victim.id, nextInterval(), Side.Buy, 1000, BID, 0)));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, victim.id, thief.agent));
        pool.submitOrders(batch);
        assertEq(locked(victim.id), 0, "victim's money untouched");
    }

    // malformed signatures

    /// A genuine low-s signature and its malleable twin (n - s, other parity) recover the same
    /// address from the raw precompile; the pool accepts only the low-s form. The agent is the
    /// address the signature recovers to, so no private key is needed and s can be chosen where
    /// n - s still fits the 255 bits that EIP-2098 leaves for it.
    function test_submitOrders_revertsWithInvalidSignatureWhenHighS() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.Order memory o = order(k.id, nextInterval(), Side.Sell, 100, ASK, 0);
        bytes32 digest = pool.hashOrder(o);
        uint256 sLow = HALF_N;
        uint256 sHigh = N - sLow;
        address signer = ecrecover(digest, 27, bytes32(GX), bytes32(sLow));
        assertTrue(signer != address(0), "a valid signature");
        assertEq(ecrecover(digest, 28, bytes32(GX), bytes32(sHigh)), signer, "the twin recovers the same signer");
        assertLt(sHigh, 1 << 255, "the twin fits the compact form");
        vm.prank(k.owner);
        registry.setAgent(k.id, signer);

        IClearingPool.SignedOrder memory twin =
            IClearingPool.SignedOrder({order: o, r: bytes32(GX), vs: bytes32(sHigh | (1 << 255))});
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        pool.submitOrders(_batch(twin));

        IClearingPool.SignedOrder memory low = IClearingPool.SignedOrder({order: o, r: bytes32(GX), vs: bytes32(sLow)});
        pool.submitOrders(_batch(low));
        assertEq(pool.positionOf(o.interval, k.id).orderCount, 1, "the low-s form is accepted");
    }

    /// For a signature from an ordinary signer n - s needs all 256 bits, so flipping it into
    /// the compact form loses the top bit: the result is a different signer, not a malleable
    /// copy.
    function test_submitOrders_revertsWithNotAgentWhenNaiveHighSFlip() public {
        CellKeys memory k = newCell(CellType.Prosumer);
        IClearingPool.SignedOrder memory so = sign(k.agentKey, order(k.id, nextInterval(), Side.Sell, 100, ASK, 0));
        uint256 s = uint256(so.vs) & (type(uint256).max >> 1);
        uint256 parity = uint256(so.vs) >> 255;
        uint256 sHigh = N - s;
        assertGe(sHigh, 1 << 255, "n - s does not fit in 255 bits");
        so.vs = bytes32(sHigh | ((1 - parity) << 255));
        address recovered = _recoverCompact(pool.hashOrder(so.order), so.r, so.vs);
        assertTrue(recovered != k.agent, "not the agent");
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotAgent.selector, k.id, recovered));
        pool.submitOrders(_batch(so));
    }

    /// After a change of user the agent is zero; a signature that recovers to nothing must
    /// not pass for that empty agent.
    function test_submitOrders_revertsWithInvalidSignatureWhenRecoveryYieldsZero() public {
        CellKeys memory k = newCell(CellType.PassiveConsumer);
        vm.prank(k.owner);
        registry.transferFrom(k.owner, stranger, k.id);
        assertEq(registry.cellOf(k.id).agent, address(0), "agent cleared");
        IClearingPool.Order memory o = order(k.id, nextInterval(), Side.Buy, 1000, BID, 0);
        bytes32[3] memory rs = [bytes32(0), bytes32(GX), bytes32(N)];
        bytes32[3] memory vss = [bytes32(0), bytes32(0), bytes32(uint256(1))];
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(_recoverCompact(pool.hashOrder(o), rs[i], vss[i]), address(0), "precompile yields zero");
            IClearingPool.SignedOrder[] memory batch =
                _batch(IClearingPool.SignedOrder({order: o, r: rs[i], vs: vss[i]}));
            vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
            pool.submitOrders(batch);
        }
        assertEq(locked(k.id), 0, "nothing locked");
    }

    function test_settle_revertsWithInvalidSignatureWhenRecoveryYieldsZeroForZeroMeter() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        r.reading.meter = address(0);
        r.r = bytes32(0);
        r.vs = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        settleOne(r);
    }

    // reading replay and forged readings

    function test_settle_ignoresReplayedReadingAndPaysOnce() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory sr = reading(m.seller, m.t, 0, 1000, 1);
        IClearingPool.SignedReading memory br = reading(m.buyer, m.t, 1000, 0, 1);
        pool.settle(_readings(sr, sr));
        assertEq(pool.intervalOf(m.t).sellDeliveredWh, 1000, "counted once within a batch");
        settleOne(br);
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        pool.settle(_readings(sr, br));
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        assertEq(pool.intervalOf(m.t).reportedCells, 2, "two cells reported");
        assertEq(available(m.seller.id), FUNDS + 200_000, "seller paid once");
        assertEq(available(m.buyer.id), FUNDS - 200_000, "buyer paid once");
    }

    function test_claim_paysOnceWhenCellListedTwice() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        pool.settle(_readings(reading(m.seller, m.t, 0, 1000, 1), reading(m.buyer, m.t, 1000, 0, 1)));
        uint256[] memory list = new uint256[](4);
        list[0] = m.buyer.id;
        list[1] = m.buyer.id;
        list[2] = m.seller.id;
        list[3] = m.seller.id;
        pool.claim(m.t, list);
        assertEq(available(m.seller.id), FUNDS + 200_000, "seller paid once");
        assertEq(available(m.buyer.id), FUNDS - 200_000, "buyer paid once");
        assertEq(wallets.marketBalance(address(pool)), 0, "books balance");
    }

    function test_settle_revertsWithInvalidSignatureWhenReadingMovedToAnotherInterval() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[][2] memory books;
        for (uint64 j = 0; j < 2; ++j) {
            books[j] =
                _list(order(seller.id, t + j, Side.Sell, 1000, ASK, 0), order(buyer.id, t + j, Side.Buy, 1000, BID, 0));
            submit(seller.agentKey, books[j][0]);
            submit(buyer.agentKey, books[j][1]);
        }
        for (uint64 j = 0; j < 2; ++j) {
            warpToGateClosure(t + j);
            pool.clear(t + j, ASK, BID, books[j]);
        }
        warpToDeliveryEnd(t + 1);
        IClearingPool.SignedReading memory r = reading(seller, t, 0, 1000, 1);
        r.reading.interval = t + 1;
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        settleOne(r);
    }

    function test_settle_revertsWithInvalidSignatureWhenReplayedOnAnotherChain() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.chainId(10);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        settleOne(r);
    }

    function test_settle_revertsWithInvalidSignatureWhenReplayedOnAnotherPool() public {
        ClearingPool twin = new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, MAX_ORDERS);
        wallets.addMarket(address(twin));
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders =
            _list(order(seller.id, t, Side.Sell, 1000, ASK, 0), order(buyer.id, t, Side.Buy, 1000, BID, 0));
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](2);
        batch[0] = _signFor(twin, seller.agentKey, orders[0]);
        batch[1] = _signFor(twin, buyer.agentKey, orders[1]);
        twin.submitOrders(batch);
        warpToGateClosure(t);
        twin.clear(t, ASK, BID, orders);
        warpToDeliveryEnd(t);

        IClearingPool.SignedReading memory r = reading(seller, t, 0, 1000, 1); // signed for `pool`
        IClearingPool.SignedReading[] memory rs = new IClearingPool.SignedReading[](1);
        rs[0] = r;
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        twin.settle(rs);
    }

    function test_settle_revertsWithMeterNotInCellWhenSignedByRemovedKey() public {
        Two memory m = _twoPartyCleared();
        vm.prank(m.seller.owner);
        registry.removeMeter(m.seller.id, m.seller.meter);
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolMeterNotInCell.selector, m.seller.meter, m.seller.id));
        settleOne(r);
    }

    /// A buyer's meter, which its owner controls, cannot vouch for the seller's delivery.
    function test_settle_revertsWithMeterNotInCellWhenSignedByAnotherCellsMeter() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.buyer, m.t, 0, 0, 1);
        r.reading.cell = m.seller.id;
        (r.r, r.vs) = vm.signCompact(m.buyer.meterKey, pool.hashReading(r.reading));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolMeterNotInCell.selector, m.buyer.meter, m.seller.id));
        settleOne(r);
    }

    function test_settle_revertsWithInvalidSignatureWhenReadingNamesMeterItWasNotSignedBy() public {
        Two memory m = _twoPartyCleared();
        warpToDeliveryEnd(m.t);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 0, 1);
        (r.r, r.vs) = vm.signCompact(m.buyer.meterKey, pool.hashReading(r.reading));
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolInvalidSignature.selector, 0));
        settleOne(r);
    }

    function test_settle_revertsWithDeliveryNotEndedWhenSettledEarly() public {
        Two memory m = _twoPartyCleared();
        (, uint256 start, uint256 end,) = pool.timesOf(m.t);
        vm.warp(start);
        IClearingPool.SignedReading memory r = reading(m.seller, m.t, 0, 1000, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolDeliveryNotEnded.selector, m.t, end));
        settleOne(r);
    }

    // dishonest clearing

    /// Dropping the cheap seller would raise the price for the other seller.
    function test_clear_revertsWithOrderSetMismatchWhenCompetingOrderDropped() public {
        Two memory m = _twoParty();
        CellKeys memory cheap = newCell(CellType.StochasticGenerator);
        IClearingPool.Order memory cheapAsk = order(cheap.id, m.t, Side.Sell, 1000, 50_000, 0);
        submit(cheap.agentKey, cheapAsk);
        warpToGateClosure(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 2, 3));
        pool.clear(m.t, ASK, BID, m.orders);
        assertTrue(!pool.intervalOf(m.t).cleared, "not cleared");
    }

    /// Lowering the buyer's limit in the clearing data would lower the price.
    function test_clear_revertsWithOrderSetMismatchWhenLimitAltered() public {
        Two memory m = _twoParty();
        warpToGateClosure(m.t);
        m.orders[1].limitPrice = ASK;
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, m.t, 2, 2));
        pool.clear(m.t, ASK, ASK, m.orders);
    }

    /// Moving a marginal order to the front would change who gets the rounding remainder.
    function test_clear_revertsWithOrderSetMismatchWhenReorderedForBetterShare() public {
        CellKeys memory first = newCell(CellType.StochasticGenerator);
        CellKeys memory second = newCell(CellType.StochasticGenerator);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](3);
        orders[0] = order(first.id, t, Side.Sell, 1000, ASK, 0);
        orders[1] = order(second.id, t, Side.Sell, 1000, ASK, 0);
        orders[2] = order(buyer.id, t, Side.Buy, 1001, BID, 0);
        for (uint256 i = 0; i < 3; ++i) {
            submit(i == 0 ? first.agentKey : i == 1 ? second.agentKey : buyer.agentKey, orders[i]);
        }
        warpToGateClosure(t);
        IClearingPool.Order[] memory swapped = new IClearingPool.Order[](3);
        swapped[0] = orders[1];
        swapped[1] = orders[0];
        swapped[2] = orders[2];
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolOrderSetMismatch.selector, t, 3, 3));
        pool.clear(t, ASK, ASK, swapped);

        pool.clear(t, ASK, ASK, orders);
        assertEq(pool.positionOf(t, first.id).filledWh, 500, "floor(1000 * 1001 / 2000)");
        assertEq(pool.positionOf(t, second.id).filledWh, 501, "the remainder goes to the later order");
    }

    function test_clear_revertsWithAlreadyClearedWhenClearedTwiceAtAnotherPrice() public {
        Two memory m = _twoPartyCleared();
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolAlreadyCleared.selector, m.t));
        pool.clear(m.t, 0, 0, m.orders);
        assertEq(pool.intervalOf(m.t).price, 200_000, "first clearing stands");
    }

    // dodging obligations

    function test_cancelOrder_revertsWithNotCellControllerWhenCompetitorCancels() public {
        Two memory m = _twoParty();
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolNotCellController.selector, m.buyer.id, stranger));
        vm.prank(stranger);
        pool.cancelOrder(m.buyer.id, m.t, 0);
    }

    function test_cancelOrder_revertsWithGateClosedWhenBuyerBacksOutAfterGate() public {
        Two memory m = _twoParty();
        (uint256 gate,,,) = pool.timesOf(m.t);
        vm.warp(gate);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolGateClosed.selector, m.t, gate));
        vm.prank(m.buyer.agent);
        pool.cancelOrder(m.buyer.id, m.t, 0);
    }

    function test_withdraw_revertsWithInsufficientBalanceWhenBuyerWithdrawsEscrow() public {
        Two memory m = _twoPartyCleared();
        vm.expectRevert(
            abi.encodeWithSelector(ICellWallets.WalletInsufficientBalance.selector, m.buyer.id, FUNDS - 300_000, FUNDS)
        );
        vm.prank(m.buyer.owner);
        wallets.withdraw(m.buyer.id, FUNDS, m.buyer.owner);
    }

    function test_claim_chargesBuyerThatDisconnectedAfterClearing() public {
        Two memory m = _twoPartyCleared();
        vm.prank(m.buyer.owner);
        registry.disconnect(m.buyer.id);
        warpToDeliveryEnd(m.t);
        pool.settle(_readings(reading(m.seller, m.t, 0, 1000, 1), reading(m.buyer, m.t, 1000, 0, 1)));
        pool.claim(m.t, cells(m.buyer.id, m.seller.id));
        assertEq(available(m.buyer.id), FUNDS - 200_000, "obligations made before disconnecting settle");
        assertEq(available(m.seller.id), FUNDS + 200_000, "seller paid");
    }

    function test_claim_revertsWithBuyersUnpaidWhenSellerClaimsBeforeBuyer() public {
        Two memory m = _twoPartyCleared();
        warpToWindowEnd(m.t);
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolBuyersUnpaid.selector, m.t, 1));
        pool.claim(m.t, cells(m.seller.id, m.buyer.id));
    }
}
