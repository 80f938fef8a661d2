// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ICellRegistry} from "./interfaces/ICellRegistry.sol";
import {ICellWallets} from "./interfaces/ICellWallets.sol";
import {IClearingPool} from "./interfaces/IClearingPool.sol";
import {CellRoles} from "./libraries/CellRoles.sol";
import {Clearing} from "./libraries/Clearing.sol";
import {MeterReadings} from "./libraries/MeterReadings.sol";
import {CellStatus, Side} from "./types/CellTypes.sol";

/// @title ClearingPool
/// @notice 15-minute (by default) uniform-price double auction with metered settlement.
/// See {IClearingPool}.
contract ClearingPool is IClearingPool, EIP712 {
    using SafeCast for uint256;
    using Clearing for Clearing.Book;
    using Clearing for Clearing.Result;

    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(uint256 cell,uint64 interval,uint8 side,uint64 energyWh,uint96 limitPrice,uint32 nonce,uint64 expiry)"
    );
    bytes32 public constant METER_READING_TYPEHASH = MeterReadings.TYPEHASH;

    /// @notice At most this many orders per cell per interval: the cancel mask has 16 bits.
    uint256 public constant MAX_ORDERS_PER_CELL = 16;

    uint8 private constant SCHEDULED = 1;
    uint8 private constant REPORTED = 2;
    uint8 private constant CLAIMED = 4;

    ICellRegistry public immutable registry;
    ICellWallets public immutable wallets;
    uint256 public immutable intervalSeconds;
    uint256 public immutable gateClosureLead;
    uint256 public immutable settlementWindow;
    uint256 public immutable maxOrdersPerInterval;

    mapping(uint64 interval => Interval) private _intervals;
    mapping(uint64 interval => mapping(uint256 cell => Position)) private _positions;

    /// @param intervalSeconds_ Length of a delivery interval, s (900 in IDEA's markets).
    /// @param gateClosureLead_ Orders close this long before delivery starts, s.
    /// @param settlementWindow_ Readings are accepted this long after delivery ends, s.
    /// @param maxOrdersPerInterval_ Bounds the clearing's gas (docs/gas.md has the figures).
    constructor(
        ICellRegistry registry_,
        ICellWallets wallets_,
        uint256 intervalSeconds_,
        uint256 gateClosureLead_,
        uint256 settlementWindow_,
        uint256 maxOrdersPerInterval_
    ) EIP712("gridcell", "1") {
        require(intervalSeconds_ > 0 && gateClosureLead_ < intervalSeconds_ * 96, "bad timing");
        require(maxOrdersPerInterval_ > 0 && maxOrdersPerInterval_ <= type(uint32).max, "bad order bound");
        registry = registry_;
        wallets = wallets_;
        intervalSeconds = intervalSeconds_;
        gateClosureLead = gateClosureLead_;
        settlementWindow = settlementWindow_;
        maxOrdersPerInterval = maxOrdersPerInterval_;
    }

    /// @inheritdoc IClearingPool
    function submitOrders(SignedOrder[] calldata orders) external {
        uint64 current;
        bytes32 chain;
        uint256 count;
        bool loaded;
        uint256 freeMemory = _freeMemory();
        for (uint256 i = 0; i < orders.length; ++i) {
            Order calldata o = orders[i].order;
            if (!loaded || o.interval != current) {
                if (loaded) _storeChain(current, chain, count);
                current = o.interval;
                (uint256 gateClosure,,,) = timesOf(current);
                if (block.timestamp >= gateClosure) revert PoolGateClosed(current, gateClosure);
                chain = _intervals[current].orderChain;
                count = _intervals[current].orderCount;
                loaded = true;
            }
            if (block.timestamp > o.expiry) revert PoolOrderExpired(o.cell, o.nonce, o.expiry);
            bytes32 structHash = _hashOrder(o);
            _checkAndBook(o, _recover(structHash, orders[i].r, orders[i].vs, i));
            // Chaining the struct hashes commits to the exact order set and its order; the
            // clearing must reproduce this value.
            chain = _link(chain, structHash);
            if (++count > maxOrdersPerInterval) revert PoolTooManyOrders(current, maxOrdersPerInterval);
            emit OrderSubmitted(current, o.cell, o.nonce, o.side, o.energyWh, o.limitPrice, o.expiry);
            _resetFreeMemory(freeMemory);
        }
        if (loaded) _storeChain(current, chain, count);
    }

    /// @inheritdoc IClearingPool
    function cancelOrder(uint256 cell, uint64 interval, uint32 nonce) external {
        ICellRegistry.Cell memory c = registry.cellOf(cell);
        if (msg.sender != c.agent && msg.sender != IERC721(address(registry)).ownerOf(cell)) {
            revert PoolNotCellController(cell, msg.sender);
        }
        (uint256 gateClosure,,,) = timesOf(interval);
        if (block.timestamp >= gateClosure) revert PoolGateClosed(interval, gateClosure);
        if (nonce >= MAX_ORDERS_PER_CELL) revert PoolBadNonce(cell, interval, nonce, uint32(MAX_ORDERS_PER_CELL - 1));
        Position storage p = _positions[interval][cell];
        uint16 bit = uint16(1 << nonce);
        if (p.cancelMask & bit != 0) revert PoolOrderIsCancelled(cell, interval, nonce);
        p.cancelMask |= bit;
        emit OrderCancelled(interval, cell, nonce);
    }

    /// @inheritdoc IClearingPool
    function clear(uint64 interval, uint96 priceLow, uint96 priceHigh, Order[] calldata orders) external {
        Interval storage s = _intervals[interval];
        (uint256 gateClosure, uint256 deliveryStart,,) = timesOf(interval);
        if (block.timestamp < gateClosure) revert PoolGateOpen(interval, gateClosure);
        if (block.timestamp >= deliveryStart) revert PoolClearingTooLate(interval, deliveryStart);
        if (s.cleared) revert PoolAlreadyCleared(interval);
        if (orders.length != s.orderCount) revert PoolOrderSetMismatch(interval, orders.length, s.orderCount);

        Clearing.Result memory result = _verifyClearing(s, interval, priceLow, priceHigh, orders);
        (uint256[] memory scheduled, uint256 scheduledCount) = _fill(interval, result, orders);

        // Pass 3: the schedule, one event per cell.
        uint256 buyers;
        for (uint256 j = 0; j < scheduledCount; ++j) {
            Position storage p = _positions[interval][scheduled[j]];
            if (p.side == Side.Buy) ++buyers;
            emit CellScheduled(interval, scheduled[j], p.side, p.filledWh);
        }
        s.cleared = true;
        s.price = uint96(result.price); // the midpoint of two uint96 values
        s.volumeWh = result.volume.toUint40();
        s.scheduledCells = uint32(scheduledCount); // <= orders.length <= maxOrdersPerInterval
        s.buyersUnpaid = uint32(buyers);
        emit IntervalCleared(
            interval, uint96(result.price), uint64(result.volume), uint32(orders.length), uint32(scheduledCount)
        );
    }

    /// @dev Pass 1: proves the order set complete and unforged (it reproduces the hash chain
    /// kept at submission) and sums the curves at the two named prices and their midpoint.
    function _verifyClearing(
        Interval storage s,
        uint64 interval,
        uint96 priceLow,
        uint96 priceHigh,
        Order[] calldata orders
    ) private view returns (Clearing.Result memory result) {
        Clearing.Book memory book = Clearing.start(priceLow, priceHigh);
        bytes32 chain;
        for (uint256 i = 0; i < orders.length; ++i) {
            Order calldata o = orders[i];
            chain = _link(chain, _hashOrder(o));
            if (_isCancelled(interval, o)) continue;
            book.add(o.side == Side.Buy, o.limitPrice, o.energyWh);
        }
        if (chain != s.orderChain) revert PoolOrderSetMismatch(interval, orders.length, s.orderCount);
        bool ok;
        (ok, result) = book.finish();
        if (!ok) revert PoolPriceNotClearing(interval, priceLow, priceHigh);
    }

    /// @dev Pass 2: fills every live order and books the fills on the cells' positions.
    /// Marginal orders share in submission order (see {Clearing.fill}).
    function _fill(uint64 interval, Clearing.Result memory result, Order[] calldata orders)
        private
        returns (uint256[] memory scheduled, uint256 scheduledCount)
    {
        scheduled = new uint256[](orders.length);
        if (!result.trades) return (scheduled, 0);
        uint256 buyBefore;
        uint256 sellBefore;
        for (uint256 i = 0; i < orders.length; ++i) {
            Order calldata o = orders[i];
            if (_isCancelled(interval, o)) continue;
            bool isBuy = o.side == Side.Buy;
            uint256 filled = result.fill(isBuy, o.limitPrice, o.energyWh, isBuy ? buyBefore : sellBefore);
            if (o.limitPrice == result.price) {
                if (isBuy) buyBefore += o.energyWh;
                else sellBefore += o.energyWh;
            }
            if (filled == 0) continue;
            Position storage p = _positions[interval][o.cell];
            if (p.flags & SCHEDULED == 0) {
                p.flags |= SCHEDULED;
                scheduled[scheduledCount++] = o.cell;
            }
            // filled <= energyWh, and the cell's orders add up to at most its uint40 limit.
            p.filledWh += uint40(filled);
        }
    }

    /// @inheritdoc IClearingPool
    function settle(SignedReading[] calldata readings) external {
        uint256 freeMemory = _freeMemory();
        for (uint256 i = 0; i < readings.length; ++i) {
            _settleOne(readings[i], i);
            _resetFreeMemory(freeMemory);
        }
    }

    function _settleOne(SignedReading calldata signed, uint256 index) private {
        MeterReading calldata r = signed.reading;
        (,, uint256 deliveryEnd, uint256 windowEnd) = timesOf(r.interval);
        if (block.timestamp < deliveryEnd) revert PoolDeliveryNotEnded(r.interval, deliveryEnd);
        if (block.timestamp >= windowEnd) revert PoolSettlementWindowClosed(r.interval, windowEnd);
        Interval storage s = _intervals[r.interval];
        if (!s.cleared) revert PoolNotCleared(r.interval);
        _checkReading(signed, index);

        Position storage p = _positions[r.interval][r.cell];
        uint8 flags = p.flags;
        if (flags & SCHEDULED == 0) revert PoolNothingScheduled(r.interval, r.cell);
        if (flags & REPORTED != 0) return;
        // Net energy at the connection point, in the direction of the cell's trade.
        bool isSell = p.side == Side.Sell;
        uint256 net = isSell
            ? (r.exportWh > r.importWh ? r.exportWh - r.importWh : 0)
            : (r.importWh > r.exportWh ? r.importWh - r.exportWh : 0);
        uint40 filled = p.filledWh;
        uint40 counted = net < filled ? uint40(net) : filled;
        p.deliveredWh = counted;
        p.flags = flags | REPORTED;
        s.reportedCells += 1;
        // Each sum is at most the interval's volume, a uint40.
        if (isSell) {
            s.sellDeliveredWh += counted;
        } else {
            s.buyDeliveredWh += counted;
            s.buyReportedScheduledWh += filled;
        }
        emit ReadingAccepted(r.interval, r.cell, r.meter, r.seq, r.importWh, r.exportWh, counted);
    }

    function _checkReading(SignedReading calldata signed, uint256 index) private view {
        MeterReadings.Check verdict = MeterReadings.check(signed, _domainSeparatorV4(), registry);
        if (verdict == MeterReadings.Check.BadSignature) revert PoolInvalidSignature(index);
        if (verdict == MeterReadings.Check.MeterNotInCell) {
            revert PoolMeterNotInCell(signed.reading.meter, signed.reading.cell);
        }
    }

    /// @inheritdoc IClearingPool
    function claim(uint64 interval, uint256[] calldata cells) external {
        Interval storage s = _intervals[interval];
        (, uint256 deliveryStart,, uint256 windowEnd) = timesOf(interval);
        bool cleared = s.cleared;
        if (!cleared && block.timestamp < deliveryStart) revert PoolIntervalOpen(interval);
        for (uint256 i = 0; i < cells.length; ++i) {
            uint256 cell = cells[i];
            Position storage p = _positions[interval][cell];
            if (p.orderCount == 0) revert PoolNoPosition(interval, cell);
            uint8 flags = p.flags;
            if (flags & CLAIMED != 0) continue;
            p.flags = flags | CLAIMED;
            uint256 escrow = p.escrow;
            // Void interval (nobody cleared it in time) or nothing filled: escrow goes back.
            if (!cleared || flags & SCHEDULED == 0) {
                if (escrow > 0) wallets.settleLocked(cell, escrow, 0);
                emit PositionSettled(interval, cell, p.side, 0, 0, escrow);
                continue;
            }
            if (s.reportedCells < s.scheduledCells && block.timestamp < windowEnd) {
                revert PoolSettlementPending(interval, s.reportedCells, s.scheduledCells, windowEnd);
            }
            _payOut(s, interval, cell, p, flags & REPORTED != 0, escrow);
        }
    }

    /// @dev The imbalance rule (docs/contracts.md): energy traded in the pool is
    /// E = min(Qs, Qb), Qs = what sellers delivered (capped at schedule, 0 without a reading),
    /// Qb = what buyers took (capped at schedule, the full schedule without a reading).
    /// Buyers pay P * q * E / Qb and sellers share what buyers paid in proportion to q.
    function _payOut(
        Interval storage s,
        uint64 interval,
        uint256 cell,
        Position storage p,
        bool reported,
        uint256 escrow
    ) private {
        uint256 qs = s.sellDeliveredWh;
        uint256 qb = uint256(s.buyDeliveredWh) + s.volumeWh - s.buyReportedScheduledWh;
        uint256 traded = qs < qb ? qs : qb;
        if (p.side == Side.Buy) {
            uint256 q = reported ? p.deliveredWh : p.filledWh;
            // Rounds down, in the buyer's favour; P <= limit for every filled buy and
            // q * traded / qb <= q <= filled, so pay <= escrow.
            uint256 pay = qb == 0 ? 0 : (uint256(s.price) * q * traded) / (qb * 1000);
            wallets.settleLocked(cell, escrow, pay);
            s.pot += uint128(pay);
            s.buyersUnpaid -= 1;
            emit PositionSettled(interval, cell, Side.Buy, uint64(q), pay, escrow - pay);
        } else {
            if (s.buyersUnpaid != 0) revert PoolBuyersUnpaid(interval, s.buyersUnpaid);
            uint256 q = reported ? p.deliveredWh : 0;
            uint256 before = s.sellClaimedWh;
            uint256 after_ = before + q;
            // Cumulative rounding: the sellers' shares add up to exactly the pot.
            uint256 amount = qs == 0 ? 0 : (after_ * s.pot) / qs - (before * s.pot) / qs;
            s.sellClaimedWh = uint40(after_);
            s.paidOut += uint128(amount);
            if (amount > 0) wallets.payFromMarket(cell, amount);
            emit PositionSettled(interval, cell, Side.Sell, uint64(q), amount, 0);
        }
    }

    /// @inheritdoc IClearingPool
    function intervalOf(uint64 interval) external view returns (Interval memory) {
        return _intervals[interval];
    }

    /// @inheritdoc IClearingPool
    function positionOf(uint64 interval, uint256 cell) external view returns (Position memory) {
        return _positions[interval][cell];
    }

    /// @inheritdoc IClearingPool
    function hashOrder(Order calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(_hashOrder(order));
    }

    /// @inheritdoc IClearingPool
    function hashReading(MeterReading calldata reading) external view returns (bytes32) {
        return _hashTypedDataV4(MeterReadings.structHash(reading));
    }

    /// @inheritdoc IClearingPool
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IClearingPool
    function timesOf(uint64 interval)
        public
        view
        returns (uint256 gateClosure, uint256 deliveryStart, uint256 deliveryEnd, uint256 windowEnd)
    {
        deliveryStart = uint256(interval) * intervalSeconds;
        gateClosure = deliveryStart > gateClosureLead ? deliveryStart - gateClosureLead : 0;
        deliveryEnd = deliveryStart + intervalSeconds;
        windowEnd = deliveryEnd + settlementWindow;
    }

    /// @dev Checks one order against its cell and books it: nonce, side, limits, escrow.
    function _checkAndBook(Order calldata o, address signer) private {
        ICellRegistry.Cell memory c = registry.cellOf(o.cell);
        if (signer != c.agent) revert PoolNotAgent(o.cell, signer);
        if (c.status != CellStatus.Connected) revert PoolCellNotConnected(o.cell);
        bool isBuy = o.side == Side.Buy;
        if (isBuy ? !CellRoles.canBuyEnergy(c.cellType) : !CellRoles.canSellEnergy(c.cellType)) {
            revert PoolRoleNotAllowed(o.cell, c.cellType, o.side);
        }
        if (o.energyWh == 0) revert PoolZeroEnergy(o.cell, o.nonce);

        (Position memory p, uint256 slot) = _loadPosition(o.interval, o.cell);
        if (p.orderCount != 0 && p.side != o.side) revert PoolSideConflict(o.cell, o.interval, o.side);
        // The next nonce, skipping nonces cancelled before they were submitted: revoking a
        // signed order that was never sent must not block the cell's later orders.
        uint256 expected = p.orderCount;
        uint256 mask = p.cancelMask;
        if (mask != 0) {
            if (o.nonce < MAX_ORDERS_PER_CELL && mask & (1 << o.nonce) != 0) {
                revert PoolOrderIsCancelled(o.cell, o.interval, o.nonce);
            }
            while (expected < MAX_ORDERS_PER_CELL && mask & (1 << expected) != 0) {
                ++expected;
            }
        }
        if (o.nonce != expected || o.nonce >= MAX_ORDERS_PER_CELL) {
            revert PoolBadNonce(o.cell, o.interval, o.nonce, uint32(expected));
        }
        // Energy a connection can carry in one interval: W * s / 3600 = Wh.
        uint256 limitWh = (uint256(isBuy ? c.maxImportW : c.maxExportW) * intervalSeconds) / 3600;
        uint256 orderedWh = uint256(p.orderedWh) + o.energyWh;
        if (orderedWh > limitWh) revert PoolEnergyOverLimit(o.cell, orderedWh, limitWh);

        if (isBuy) {
            // Rounds up, in the pool's favour: the escrow always covers the order's worst case.
            uint256 escrow = (uint256(o.limitPrice) * o.energyWh + 999) / 1000;
            wallets.lockForAgent(o.cell, escrow);
            p.escrow = (uint256(p.escrow) + escrow).toUint96();
        }
        // orderedWh <= limitWh, and limitWh < 2^40 for any uint32 W limit and interval up to
        // 256 days, which the constructor's bound on the lead does not bound: hence toUint40.
        p.orderedWh = orderedWh.toUint40();
        p.orderCount = uint8(o.nonce + 1); // nonces used or skipped so far; nonce < 16 checked above
        p.side = o.side;
        _storePosition(slot, p);
    }

    /// @dev Reads a position with one SLOAD. The legacy code generator copies a packed struct
    /// between storage and memory field by field (one SLOAD, and one SSTORE, per field), which
    /// cost about 2,500 gas per order here. The layout is Solidity's own for {Position}:
    /// fields packed from the low-order bits in declaration order; the unit tests read
    /// positions back through {positionOf}, which uses the compiler's layout.
    function _loadPosition(uint64 interval, uint256 cell) private view returns (Position memory p, uint256 slot) {
        Position storage ref = _positions[interval][cell];
        uint256 word;
        assembly ("memory-safe") {
            slot := ref.slot
            word := sload(slot)
        }
        p.escrow = uint96(word);
        p.orderedWh = uint40(word >> 96);
        p.filledWh = uint40(word >> 136);
        p.deliveredWh = uint40(word >> 176);
        p.cancelMask = uint16(word >> 216);
        p.orderCount = uint8(word >> 232);
        p.side = Side(uint8(word >> 240));
        p.flags = uint8(word >> 248);
    }

    /// @dev Writes a position with one SSTORE; the inverse of {_loadPosition}.
    function _storePosition(uint256 slot, Position memory p) private {
        uint256 word = uint256(p.escrow) | (uint256(p.orderedWh) << 96) | (uint256(p.filledWh) << 136)
            | (uint256(p.deliveredWh) << 176) | (uint256(p.cancelMask) << 216) | (uint256(p.orderCount) << 232)
            | (uint256(uint8(p.side)) << 240) | (uint256(p.flags) << 248);
        assembly ("memory-safe") {
            sstore(slot, word)
        }
    }

    function _storeChain(uint64 interval, bytes32 chain, uint256 count) private {
        Interval storage s = _intervals[interval];
        s.orderChain = chain;
        s.orderCount = uint32(count); // count <= maxOrdersPerInterval <= uint32 max
    }

    function _isCancelled(uint64 interval, Order calldata o) private view returns (bool) {
        return o.nonce < MAX_ORDERS_PER_CELL && _positions[interval][o.cell].cancelMask & (1 << o.nonce) != 0;
    }

    function _recover(bytes32 structHash, bytes32 r, bytes32 vs, uint256 index) private view returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), r, vs);
        if (err != ECDSA.RecoverError.NoError) revert PoolInvalidSignature(index);
        return signer;
    }

    /// @dev EIP-712 struct hash of an order, computed at the free memory pointer without
    /// moving it: clearing hashes up to `maxOrdersPerInterval` orders in one call, and
    /// `abi.encode` would grow memory (whose cost is quadratic) by 256 bytes each time. Every
    /// field is one 32-byte word in calldata; one with dirty high bits hashes to a digest no
    /// agent signed and a hash chain the pool never kept, so it is refused either way.
    function _hashOrder(Order calldata o) private pure returns (bytes32 h) {
        bytes32 typeHash = ORDER_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            calldatacopy(add(m, 0x20), o, 0xe0)
            h := keccak256(m, 0x100)
        }
    }

    /// @dev Memory allocated inside a batch loop iteration (return buffers of external calls,
    /// structs) is dead at its end. Memory cost grows with the square of its size, so giving it
    /// back each iteration keeps a 100-order batch from paying for 100 orders' garbage.
    function _freeMemory() private pure returns (uint256 pointer) {
        assembly ("memory-safe") {
            pointer := mload(0x40)
        }
    }

    function _resetFreeMemory(uint256 pointer) private pure {
        assembly ("memory-safe") {
            mstore(0x40, pointer)
        }
    }

    /// @dev Links an order into an interval's hash chain, in scratch space.
    function _link(bytes32 chain, bytes32 structHash) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, chain)
            mstore(0x20, structHash)
            h := keccak256(0x00, 0x40)
        }
    }
}
