// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellRegistry} from "../../src/CellRegistry.sol";
import {CellWallets} from "../../src/CellWallets.sol";
import {ClearingPool} from "../../src/ClearingPool.sol";
import {DevnetToken} from "../../src/DevnetToken.sol";
import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {CellType, Side} from "../../src/types/CellTypes.sol";
import {ReferenceAuction} from "../utils/ReferenceAuction.sol";
import {Test} from "../utils/Test.sol";

/// @notice Drives the clearing pool through whole intervals for the invariant campaign: a fixed
/// set of cells of every IDEA type deposits, withdraws, bids, cancels, changes hands, and the
/// pool is cleared (at the reference auction's bounds), settled with random meter readings and
/// paid out. Every action bounds its inputs and returns early when it does not apply, so a
/// revert is a finding (`fail_on_revert`). Actions that must fail are called through `_probe`,
/// which counts an unexpected success or a wrong error as a violation.
/// @dev The ghost state is kept from what the handler did, not from the pool's own sums: the
/// order lists, cancel masks, escrows (ceil(limit * energy / 1000) per buy order), fills (from
/// {ReferenceAuction}), metered energy (from the readings the handler signed) and the payouts
/// the documented imbalance rule gives. The handler keeps the clock itself and warps to it at
/// the start of every action, so time never depends on how forge carries block state from one
/// call of a run to the next.
contract PoolHandler is Test {
    struct CellGhost {
        uint256 id;
        CellType cellType;
        address owner;
        /// 0 when the cell has no agent (after a change of user).
        uint256 agentKey;
        uint256 meterKey;
        uint64 meterSeq;
        bool disconnected;
        uint256 deposited;
        uint256 withdrawn;
        /// What the imbalance rule says the cell paid and received, summed over intervals.
        uint256 expectedPaid;
        uint256 expectedReceived;
    }

    /// Packed (the invariants read every ghost after every call, and each check is a fresh
    /// transaction where every slot is a cold read).
    struct IntervalGhost {
        bool cleared;
        uint32 scheduledBuyers;
        uint32 scheduledSellers;
        uint32 reportedCells;
        uint32 buyersClaimed;
        uint64 priceLow;
        uint64 priceHigh;
        uint64 price;
        uint64 volume;
        /// Sum of the expected buyer payments (the pot the rule predicts).
        uint64 expectedPot;
        /// Metered sell energy already paid out, in claim order (the sellers' cumulative sum).
        uint64 sellClaimedWh;
        /// What was observed moving, from wallet balances around each claim.
        uint64 paid;
        uint64 received;
    }

    struct PositionGhost {
        /// Nonces used or skipped so far (last nonce submitted + 1), as the pool counts them.
        uint8 orderCount;
        uint16 cancelMask;
        bool isBuy;
        bool reported;
        bool claimed;
        uint64 escrow;
        uint64 orderedWh;
        /// Sum of the reference fills of the cell's orders.
        uint64 filledWh;
        /// Sum of limit * fill over the cell's orders.
        uint128 limitValue;
        /// min(net energy in the trade's direction, filled), from the reading the handler signed.
        uint64 deliveredWh;
        /// Observed: a buyer's drop of available + locked, a seller's rise.
        uint64 paid;
        uint64 received;
        /// The amount the imbalance rule gives (pay for a buyer, receipt for a seller).
        uint64 expected;
    }

    uint256 internal constant LIMIT_W = 40_000; // 10,000 Wh per 15-minute interval
    uint256 internal constant MAX_ENERGY = 2_500;
    /// Prices in a narrow band so ties and marginal orders are common; none is a multiple of
    /// 1000, so every amount rounds. (Every fourth interval bids sit one band higher.)
    uint256 internal constant PRICE_MIN = 995;
    uint256 internal constant PRICE_SPAN = 16;
    uint256 internal constant INITIAL_FUNDS = 30_000;
    address internal constant SINK = address(0x51CC);

    DevnetToken internal immutable token;
    CellRegistry internal immutable registry;
    CellWallets internal immutable wallets;
    ClearingPool internal immutable pool;
    uint256 internal immutable intervalSeconds;
    uint256 internal immutable lead;
    uint256 internal immutable window;

    uint256 public currentTime;
    uint256 internal _keySeed = 0xCE11;

    CellGhost[] internal _cells;
    mapping(uint256 cellId => uint256 index) internal _indexOf;
    uint64[] internal _intervals;
    mapping(uint64 interval => bool) internal _known;
    mapping(uint64 interval => IntervalGhost) internal _ig;
    mapping(uint64 interval => mapping(uint256 cellId => PositionGhost)) internal _pg;
    mapping(uint64 interval => IClearingPool.Order[]) internal _orders;
    mapping(uint64 interval => uint256[]) internal _fills;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public violations;
    string public lastViolation;

    /// Counts of what the campaign reached, for judging its coverage.
    uint256 public callsSubmitted;
    uint256 public callsCancelled;
    uint256 public callsCleared;
    uint256 public callsTraded;
    uint256 public callsRanged;
    uint256 public callsSettled;
    uint256 public callsClaimed;
    uint256 public callsProbed;
    uint256 public sellersPaid;
    uint256 public voidRefunds;

    constructor(DevnetToken token_, CellRegistry registry_, CellWallets wallets_, ClearingPool pool_) {
        token = token_;
        registry = registry_;
        wallets = wallets_;
        pool = pool_;
        intervalSeconds = pool_.intervalSeconds();
        lead = pool_.gateClosureLead();
        window = pool_.settlementWindow();
        currentTime = block.timestamp;
        _newCell(CellType.Prosumer);
        _newCell(CellType.Prosumer);
        _newCell(CellType.ConsumerWithGeneration);
        _newCell(CellType.ActiveConsumer);
        _newCell(CellType.PassiveConsumer);
        _newCell(CellType.LoadFollowingGenerator);
        _newCell(CellType.StochasticGenerator);
    }

    modifier syncTime() {
        vm.warp(currentTime);
        _;
    }

    function deposit(uint256 cellSeed, uint256 amount) external syncTime {
        CellGhost storage c = _cells[cellSeed % _cells.length];
        amount = bound(amount, 1, 20_000);
        token.faucet(address(this), amount);
        token.approve(address(wallets), amount);
        wallets.deposit(c.id, amount);
        c.deposited += amount;
        ghostDeposited += amount;
    }

    function withdraw(uint256 cellSeed, uint256 amount) external syncTime {
        CellGhost storage c = _cells[cellSeed % _cells.length];
        (uint256 avail,) = wallets.balanceOf(c.id);
        if (avail == 0) return;
        amount = bound(amount, 1, avail);
        vm.prank(c.owner);
        wallets.withdraw(c.id, amount, SINK);
        c.withdrawn += amount;
        ghostWithdrawn += amount;
    }

    /// The owner caps what the agent may lock per day: often unlimited, sometimes tight.
    function setDailyCap(uint256 cellSeed, uint256 cap) external syncTime {
        CellGhost storage c = _cells[cellSeed % _cells.length];
        cap = cap % 3 == 0 ? type(uint256).max : bound(cap, 0, 20_000);
        vm.prank(c.owner);
        wallets.setDailyCap(c.id, cap);
    }

    /// Changes the cell's user. The registry clears the agent; half the time the new user
    /// names a fresh agent key at once.
    function transferCell(uint256 cellSeed, bool nameAgent) external syncTime {
        CellGhost storage c = _cells[cellSeed % _cells.length];
        address newOwner = vm.addr(++_keySeed);
        vm.prank(c.owner);
        registry.transferFrom(c.owner, newOwner, c.id);
        c.owner = newOwner;
        c.agentKey = 0;
        if (nameAgent) _rotateAgent(c);
    }

    function rotateAgent(uint256 cellSeed) external syncTime {
        _rotateAgent(_cells[cellSeed % _cells.length]);
    }

    /// Rare on purpose: a disconnected cell never trades again in the run.
    function disconnect(uint256 cellSeed) external syncTime {
        if (cellSeed % 8 != 0) return;
        CellGhost storage c = _cells[(cellSeed >> 8) % _cells.length];
        if (c.disconnected) return;
        vm.prank(c.owner);
        registry.disconnect(c.id);
        c.disconnected = true;
    }

    function warp(uint256 seconds_) external syncTime {
        _warp(currentTime + bound(seconds_, 1, intervalSeconds));
    }

    /// Submits 1-6 orders of random cells for the next open intervals, in one batch (which
    /// may span two intervals), with the correct nonces, sides the cell may take, and energy
    /// and escrow the cell can carry. Orders that would not be valid are left out.
    function submitOrders(uint256 seed, uint256 count) external syncTime {
        seed = _mix(seed);
        count = bound(count, 1, 6);
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](count);
        uint256[] memory pendingLock = new uint256[](_cells.length);
        uint256 n;
        for (uint256 k = 0; k < count; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k)));
            (bool ok, IClearingPool.Order memory o, uint256 cellIndex) = _draftOrder(r, pendingLock);
            if (!ok) continue;
            _bookGhost(o);
            (bytes32 sr, bytes32 vs) = vm.signCompact(_cells[cellIndex].agentKey, pool.hashOrder(o));
            batch[n++] = IClearingPool.SignedOrder({order: o, r: sr, vs: vs});
        }
        if (n == 0) return;
        assembly {
            mstore(batch, n) // keep the orders drafted
        }
        pool.submitOrders(batch);
        ++callsSubmitted;
    }

    /// Cancels an order of an open interval, or revokes a nonce not yet used (the cell's next
    /// order then skips it); agent or owner. Cancelling a nonce twice must be refused.
    function cancelOrder(uint256 seed) external syncTime {
        if (_intervals.length == 0) return;
        seed = _mix(seed);
        uint64 t = _intervals[seed % _intervals.length];
        if (currentTime >= _gateClosure(t)) return;
        CellGhost storage c = _cells[(seed >> 8) % _cells.length];
        PositionGhost storage p = _pg[t][c.id];
        uint256 r = seed >> 16;
        uint32 nonce;
        if (p.orderCount > 0 && r % 4 != 0) {
            nonce = uint32((r >> 2) % p.orderCount);
        } else {
            // A nonce not used yet: revoked, and skipped by the cell's next order.
            if (p.orderCount >= 16) return;
            nonce = uint32(p.orderCount + (r >> 2) % (16 - uint256(p.orderCount)));
        }
        address caller = c.agentKey != 0 && (r >> 12) % 2 == 0 ? vm.addr(c.agentKey) : c.owner;
        if (p.cancelMask & (1 << nonce) != 0) {
            _probe(
                caller,
                abi.encodeCall(pool.cancelOrder, (c.id, t, nonce)),
                IClearingPool.PoolOrderIsCancelled.selector,
                "cancel twice"
            );
            return;
        }
        vm.prank(caller);
        pool.cancelOrder(c.id, t, nonce);
        p.cancelMask |= uint16(1 << nonce);
        ++callsCancelled;
    }

    /// Clears the earliest interval not yet cleared whose delivery has not started (warping
    /// to its gate closure if needed; a later one would void it) at the bounds the reference
    /// auction computes from the ghost order list. First it tries a neighbouring pair of
    /// bounds, which must be refused: always when the prices form a range, else a quarter of
    /// the time.
    function clear(uint256 seed) external syncTime {
        seed = _mix(seed);
        (uint64 t, bool found) = _earliestClearable();
        if (!found) return;
        uint256 gate = _gateClosure(t);
        if (currentTime < gate) _warp(gate + (seed >> 8) % lead);
        IClearingPool.Order[] memory os = _orders[t];
        ReferenceAuction.Outcome memory out = _reference(t, os);
        // A pair of bounds that went through would have cleared the interval: stop here.
        bool probe = out.priceLow < out.priceHigh || (seed >> 20) % 4 == 0;
        if (probe && !_probeWrongBounds(t, os, out, seed >> 24)) return;
        pool.clear(t, uint96(out.priceLow), uint96(out.priceHigh), os);
        _recordClearing(t, os, out);
        ++callsCleared;
        if (out.volume > 0) ++callsTraded;
        if (out.priceLow < out.priceHigh) ++callsRanged;
    }

    /// Hands in signed readings for most scheduled cells of a cleared interval (warping to
    /// delivery end if needed): exact, short, over, reversed or noisy flows; now and then a
    /// second reading for a cell already reported, which the pool must ignore.
    function settle(uint256 seed) external syncTime {
        seed = _mix(seed);
        (uint64 t, bool found) = _pick(seed, 1);
        if (!found) return;
        uint256 deliveryEnd = _deliveryStart(t) + intervalSeconds;
        if (currentTime < deliveryEnd) _warp(deliveryEnd + (seed >> 8) % 600);
        IClearingPool.SignedReading[] memory batch = new IClearingPool.SignedReading[](_cells.length);
        uint256[] memory counted = new uint256[](_cells.length);
        bool[] memory fresh = new bool[](_cells.length);
        uint256 n;
        for (uint256 i = 0; i < _cells.length; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i, "reading")));
            PositionGhost storage p = _pg[t][_cells[i].id];
            if (p.filledWh == 0) continue;
            if (p.reported ? r % 8 != 0 : r % 4 == 0) continue;
            (batch[n], counted[n]) = _reading(t, _cells[i], p, r >> 8);
            fresh[n] = !p.reported;
            ++n;
        }
        if (n == 0) return;
        assembly {
            mstore(batch, n)
        }
        pool.settle(batch);
        ++callsSettled;
        for (uint256 j = 0; j < n; ++j) {
            if (!fresh[j]) continue;
            PositionGhost storage p = _pg[t][batch[j].reading.cell];
            p.reported = true;
            p.deliveredWh = _u64(counted[j]);
            _ig[t].reportedCells += 1;
        }
    }

    /// Claims positions of an interval: buyers first, then sellers, most of the time; now
    /// and then in a shuffled order, with a duplicate, or before the interval may be paid,
    /// in which case the pool must refuse (probe). It may also move the clock to the end of
    /// delivery (making an uncleared interval void) or of the settlement window.
    function claim(uint256 seed) external syncTime {
        seed = _mix(seed);
        // Mostly an interval that can be paid out (cleared, or void); one time in eight an
        // open one: claim it too early (probe) or let it go void.
        (uint64 t, bool found) = _pick(seed, (seed >> 8) % 8 == 0 ? 3 : 2);
        if (!found) return;
        if (!_ig[t].cleared && currentTime < _deliveryStart(t) && (seed >> 12) % 2 == 0) _warp(_deliveryStart(t));
        IntervalGhost storage g = _ig[t];
        if (g.cleared && g.reportedCells < g.scheduledBuyers + g.scheduledSellers && currentTime < _windowEnd(t)) {
            // Readings missing: half the time wait for the window to end, else try (and be
            // refused if the list holds a scheduled cell).
            if ((seed >> 16) % 2 == 0) _warp(_windowEnd(t) + (seed >> 20) % 600);
        }
        uint256[] memory list = _claimList(t, seed >> 32);
        if (list.length == 0) return;
        bytes4 expected = _predictClaim(t, list);
        if (expected == bytes4(0)) {
            _claimAndRecord(t, list);
        } else {
            _probe(address(this), abi.encodeCall(pool.claim, (t, list)), expected, "claim");
        }
    }

    /// Called once after each run: moves past every settlement window and claims every
    /// position, buyers first, so the test can check that no money is left stuck.
    function finalize() external syncTime {
        uint256 latest = currentTime;
        for (uint256 i = 0; i < _intervals.length; ++i) {
            uint256 end = _windowEnd(_intervals[i]);
            if (end > latest) latest = end;
        }
        _warp(latest);
        for (uint256 i = 0; i < _intervals.length; ++i) {
            uint64 t = _intervals[i];
            uint256[] memory list = new uint256[](_cells.length);
            uint256 n;
            for (uint256 pass = 0; pass < 2; ++pass) {
                for (uint256 j = 0; j < _cells.length; ++j) {
                    PositionGhost storage p = _pg[t][_cells[j].id];
                    if (p.orderCount == 0 || p.claimed || p.isBuy != (pass == 0)) continue;
                    list[n++] = _cells[j].id;
                }
            }
            if (n == 0) continue;
            assembly {
                mstore(list, n)
            }
            _claimAndRecord(t, list);
        }
    }

    function cells() external view returns (CellGhost[] memory) {
        return _cells;
    }

    function cellIds() external view returns (uint256[] memory ids) {
        ids = new uint256[](_cells.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            ids[i] = _cells[i].id;
        }
    }

    function intervals() external view returns (uint64[] memory) {
        return _intervals;
    }

    /// Every ghost at once, for the invariants: `ps[k][i]` is cell i's position in interval
    /// `ts[k]` (cells in the order of {cellIds}). One call instead of one per position keeps
    /// each check cheap: forge's inspectors make every external call count.
    function ghosts()
        external
        view
        returns (uint64[] memory ts, IntervalGhost[] memory gs, PositionGhost[][] memory ps)
    {
        ts = _intervals;
        gs = new IntervalGhost[](ts.length);
        ps = new PositionGhost[][](ts.length);
        for (uint256 k = 0; k < ts.length; ++k) {
            gs[k] = _ig[ts[k]];
            ps[k] = new PositionGhost[](_cells.length);
            for (uint256 i = 0; i < _cells.length; ++i) {
                ps[k][i] = _pg[ts[k]][_cells[i].id];
            }
        }
    }

    /// The interval's orders in submission order, and the reference's fill of each: what to
    /// look at when an invariant fails.
    function ordersOf(uint64 t) external view returns (IClearingPool.Order[] memory) {
        return _orders[t];
    }

    function fillsOf(uint64 t) external view returns (uint256[] memory) {
        return _fills[t];
    }

    /// Metered sell energy Qs and bought energy Qb of the imbalance rule, from the ghosts:
    /// Qs sums the sellers' metered energy (0 without a reading), Qb the buyers' (their full
    /// fill without a reading).
    function imbalance(uint64 t) public view returns (uint256 qs, uint256 qb) {
        for (uint256 i = 0; i < _cells.length; ++i) {
            PositionGhost storage p = _pg[t][_cells[i].id];
            if (p.filledWh == 0) continue;
            if (p.isBuy) qb += p.reported ? p.deliveredWh : p.filledWh;
            else if (p.reported) qs += p.deliveredWh;
        }
    }

    function _newCell(CellType cellType) internal {
        uint256 ownerKey = ++_keySeed;
        uint256 agentKey = ++_keySeed;
        uint256 meterKey = ++_keySeed;
        address owner = vm.addr(ownerKey);
        address[] memory meters = new address[](1);
        meters[0] = vm.addr(meterKey);
        uint256 id = registry.connect(owner, cellType, 0, uint32(LIMIT_W), uint32(LIMIT_W), vm.addr(agentKey), meters);
        token.faucet(address(this), INITIAL_FUNDS);
        token.approve(address(wallets), INITIAL_FUNDS);
        wallets.deposit(id, INITIAL_FUNDS);
        vm.prank(owner);
        wallets.setDailyCap(id, type(uint256).max);
        _indexOf[id] = _cells.length;
        _cells.push(
            CellGhost({
                id: id,
                cellType: cellType,
                owner: owner,
                agentKey: agentKey,
                meterKey: meterKey,
                meterSeq: 0,
                disconnected: false,
                deposited: INITIAL_FUNDS,
                withdrawn: 0,
                expectedPaid: 0,
                expectedReceived: 0
            })
        );
        ghostDeposited += INITIAL_FUNDS;
    }

    function _rotateAgent(CellGhost storage c) internal {
        uint256 key = ++_keySeed;
        vm.prank(c.owner);
        registry.setAgent(c.id, vm.addr(key));
        c.agentKey = key;
    }

    function _warp(uint256 to) internal {
        if (to <= currentTime) return;
        currentTime = to;
        vm.warp(to);
    }

    function _deliveryStart(uint64 t) internal view returns (uint256) {
        return uint256(t) * intervalSeconds;
    }

    function _gateClosure(uint64 t) internal view returns (uint256) {
        uint256 start = _deliveryStart(t);
        return start > lead ? start - lead : 0;
    }

    function _windowEnd(uint64 t) internal view returns (uint256) {
        return _deliveryStart(t) + intervalSeconds + window;
    }

    /// IDEA Table 2, energy column, written out again rather than read from {CellRoles}.
    function _mayBuy(CellType ct) internal pure returns (bool) {
        return ct == CellType.Prosumer || ct == CellType.ConsumerWithGeneration || ct == CellType.ActiveConsumer
            || ct == CellType.PassiveConsumer;
    }

    function _maySell(CellType ct) internal pure returns (bool) {
        return ct == CellType.LoadFollowingGenerator || ct == CellType.StochasticGenerator || ct == CellType.Prosumer
            || ct == CellType.ConsumerWithGeneration;
    }

    function _draftOrder(uint256 r, uint256[] memory pendingLock)
        internal
        view
        returns (bool ok, IClearingPool.Order memory o, uint256 cellIndex)
    {
        cellIndex = r % _cells.length;
        CellGhost storage c = _cells[cellIndex];
        if (c.agentKey == 0 || c.disconnected) return (false, o, cellIndex);
        // Mostly the next interval whose gate is open (so books get deep), else the one after.
        uint64 t = uint64(currentTime / intervalSeconds + 1);
        if (currentTime >= _gateClosure(t)) t += 1;
        if ((r >> 8) % 4 == 0) t += 1;
        PositionGhost storage p = _pg[t][c.id];
        uint256 nonce = _nextNonce(p);
        if (nonce >= 16) return (false, o, cellIndex);
        uint256 room = (LIMIT_W * intervalSeconds) / 3600 - p.orderedWh;
        if (room == 0) return (false, o, cellIndex);
        o.cell = c.id;
        o.interval = t;
        o.side = _side(c.cellType, p, r >> 16) ? Side.Buy : Side.Sell;
        bool buying = o.side == Side.Buy;
        if (t % 4 == 0) {
            // A crossed interval: every bid above every ask and energy in 500 Wh steps, so
            // demand and supply often meet exactly and the clearing prices form a range.
            o.energyWh = uint64(_min(500 * (1 + (r >> 24) % 3), room));
            o.limitPrice = uint96(PRICE_MIN + (r >> 40) % PRICE_SPAN + (buying ? PRICE_SPAN : 0));
        } else {
            o.energyWh = uint64(_min(1 + (r >> 24) % MAX_ENERGY, room));
            o.limitPrice = uint96(PRICE_MIN + (r >> 40) % PRICE_SPAN);
        }
        o.nonce = uint32(nonce);
        o.expiry = uint64(currentTime + (r >> 56) % 3600);
        if (o.side == Side.Buy && !_affordable(cellIndex, o, pendingLock)) return (false, o, cellIndex);
        return (true, o, cellIndex);
    }

    /// The nonce the pool expects next: the first one from `orderCount` on that was not
    /// cancelled before being used (IClearingPool.Order.nonce: such nonces are skipped).
    function _nextNonce(PositionGhost storage p) internal view returns (uint256 n) {
        n = p.orderCount;
        while (n < 16 && p.cancelMask & (1 << n) != 0) ++n;
    }

    /// The position's side if it has one, else a side the cell type may take.
    function _side(CellType ct, PositionGhost storage p, uint256 r) internal view returns (bool isBuy) {
        if (p.orderCount > 0) return p.isBuy;
        bool b = _mayBuy(ct);
        return b && (!_maySell(ct) || r % 2 == 0);
    }

    /// Whether the buy's escrow fits the cell's available money and the agent's daily cap,
    /// counting the escrow of the batch's earlier orders; books it if so.
    function _affordable(uint256 cellIndex, IClearingPool.Order memory o, uint256[] memory pendingLock)
        internal
        view
        returns (bool)
    {
        uint256 id = _cells[cellIndex].id;
        uint256 committed = pendingLock[cellIndex] + (uint256(o.limitPrice) * o.energyWh + 999) / 1000;
        (uint256 avail,) = wallets.balanceOf(id);
        (uint256 cap, uint256 spent,) = wallets.dailySpend(id);
        if (committed > avail || spent + committed > cap) return false;
        pendingLock[cellIndex] = committed;
        return true;
    }

    /// Ghost amounts and energies stay far below 2^64 here (a few thousand Wh per order,
    /// prices near 1000); a value that did not fit would be a finding.
    function _u64(uint256 x) internal pure returns (uint64) {
        require(x <= type(uint64).max, "ghost overflow");
        return uint64(x);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _bookGhost(IClearingPool.Order memory o) internal {
        if (!_known[o.interval]) {
            _known[o.interval] = true;
            _intervals.push(o.interval);
        }
        PositionGhost storage p = _pg[o.interval][o.cell];
        p.isBuy = o.side == Side.Buy;
        p.orderCount = uint8(o.nonce + 1);
        p.orderedWh += o.energyWh;
        if (p.isBuy) p.escrow += _u64((uint256(o.limitPrice) * o.energyWh + 999) / 1000);
        _orders[o.interval].push(o);
    }

    /// kind 1: settleable (cleared, a
    /// scheduled cell without reading, window open); 2: has an unclaimed position and is
    /// cleared or void; 3: has an unclaimed position and is still open.
    function _pick(uint256 seed, uint256 kind) internal view returns (uint64, bool) {
        uint256 len = _intervals.length;
        for (uint256 k = 0; k < len; ++k) {
            uint64 t = _intervals[(seed + k) % len];
            IntervalGhost storage g = _ig[t];
            if (kind == 1) {
                if (
                    g.cleared && g.reportedCells < g.scheduledBuyers + g.scheduledSellers && currentTime < _windowEnd(t)
                ) return (t, true);
            } else if (_hasUnclaimed(t)) {
                bool open = !g.cleared && currentTime < _deliveryStart(t);
                if (open == (kind == 3)) return (t, true);
            }
        }
        return (0, false);
    }

    function _earliestClearable() internal view returns (uint64 best, bool found) {
        for (uint256 k = 0; k < _intervals.length; ++k) {
            uint64 t = _intervals[k];
            if (_ig[t].cleared || currentTime >= _deliveryStart(t)) continue;
            if (!found || t < best) (best, found) = (t, true);
        }
    }

    function _hasUnclaimed(uint64 t) internal view returns (bool) {
        for (uint256 i = 0; i < _cells.length; ++i) {
            PositionGhost storage p = _pg[t][_cells[i].id];
            if (p.orderCount > 0 && !p.claimed) return true;
        }
        return false;
    }

    /// The reference outcome over the ghost order list and the ghost cancel masks.
    function _reference(uint64 t, IClearingPool.Order[] memory os)
        internal
        view
        returns (ReferenceAuction.Outcome memory)
    {
        bool[] memory live = new bool[](os.length);
        for (uint256 i = 0; i < os.length; ++i) {
            live[i] = _pg[t][os[i].cell].cancelMask & (1 << os[i].nonce) == 0;
        }
        return ReferenceAuction.solve(ReferenceAuction.bookOf(os, live));
    }

    function _probeWrongBounds(
        uint64 t,
        IClearingPool.Order[] memory os,
        ReferenceAuction.Outcome memory out,
        uint256 r
    ) internal returns (bool refused) {
        uint256 low = out.priceLow;
        uint256 high = out.priceHigh;
        uint256 which = r % 4;
        if (which == 0 && low > 0) low -= 1;
        else if (which == 1) low += 1;
        else if (which == 2) high += 1;
        else if (high > 0) high -= 1;
        else high += 1;
        return _probe(
            address(this),
            abi.encodeCall(pool.clear, (t, uint96(low), uint96(high), os)),
            IClearingPool.PoolPriceNotClearing.selector,
            "clear at bounds other than the reference's"
        );
    }

    function _recordClearing(uint64 t, IClearingPool.Order[] memory os, ReferenceAuction.Outcome memory out) internal {
        IntervalGhost storage g = _ig[t];
        g.cleared = true;
        g.priceLow = _u64(out.priceLow);
        g.priceHigh = _u64(out.priceHigh);
        g.price = _u64(out.price);
        g.volume = _u64(out.volume);
        for (uint256 i = 0; i < os.length; ++i) {
            uint256 f = out.fills[i];
            _fills[t].push(f);
            if (f == 0) continue;
            PositionGhost storage p = _pg[t][os[i].cell];
            if (p.filledWh == 0) {
                if (p.isBuy) g.scheduledBuyers += 1;
                else g.scheduledSellers += 1;
            }
            p.filledWh += _u64(f);
            p.limitValue += uint128(uint256(os[i].limitPrice) * f); // < 2^96 * 2^40
        }
    }

    function _reading(uint64 t, CellGhost storage c, PositionGhost storage p, uint256 r)
        internal
        returns (IClearingPool.SignedReading memory signed, uint256 counted)
    {
        (uint256 along, uint256 against) = _flows(p.filledWh, r);
        uint256 net = along > against ? along - against : 0;
        counted = net < p.filledWh ? net : p.filledWh;
        IClearingPool.MeterReading memory m;
        m.meter = vm.addr(c.meterKey);
        m.cell = c.id;
        m.interval = t;
        (m.importWh, m.exportWh) = p.isBuy ? (uint64(along), uint64(against)) : (uint64(against), uint64(along));
        m.importCumWh = m.importWh;
        m.exportCumWh = m.exportWh;
        m.seq = ++c.meterSeq;
        (bytes32 sr, bytes32 vs) = vm.signCompact(c.meterKey, pool.hashReading(m));
        signed = IClearingPool.SignedReading({reading: m, r: sr, vs: vs});
    }

    /// Energy metered in the trade's direction (`along`: export for a seller) and against it,
    /// for a position filled `f` > 0: exact (twice as likely), short, over, reversed, or noisy.
    function _flows(uint256 f, uint256 r) internal pure returns (uint256 along, uint256 against) {
        uint256 mode = r % 6;
        r >>= 8;
        if (mode == 0 || mode == 5) {
            along = f;
        } else if (mode == 1) {
            along = r % f;
        } else if (mode == 2) {
            along = f + 1 + r % f;
        } else if (mode == 3) {
            against = 1 + r % f;
        } else {
            along = r % (2 * f);
            against = (r >> 32) % f;
        }
    }

    /// Positions of `t` (claimed ones too: the pool must skip them), each kept with
    /// probability 7/8 (buyers) or 3/4 (sellers); buyers first unless shuffled (1 in 5);
    /// a duplicate at the end 1 in 5.
    function _claimList(uint64 t, uint256 r) internal view returns (uint256[] memory list) {
        list = new uint256[](_cells.length + 1);
        uint256 n;
        for (uint256 pass = 0; pass < 2; ++pass) {
            for (uint256 j = 0; j < _cells.length; ++j) {
                PositionGhost storage p = _pg[t][_cells[j].id];
                if (p.orderCount == 0 || p.isBuy != (pass == 0)) continue;
                uint256 bits = (r >> (4 * j + 32 * pass)) % 8;
                if (pass == 0 ? bits == 0 : bits < 2) continue;
                list[n++] = _cells[j].id;
            }
        }
        if (n == 0) return new uint256[](0);
        if ((r >> 64) % 5 == 0) {
            for (uint256 i = n - 1; i > 0; --i) {
                uint256 j = uint256(keccak256(abi.encode(r, i))) % (i + 1);
                (list[i], list[j]) = (list[j], list[i]);
            }
        }
        if ((r >> 72) % 5 == 0) list[n++] = list[0];
        assembly {
            mstore(list, n)
        }
    }

    /// The error the pool must raise for this claim, or 0 when it must go through.
    function _predictClaim(uint64 t, uint256[] memory list) internal view returns (bytes4) {
        IntervalGhost storage g = _ig[t];
        if (!g.cleared && currentTime < _deliveryStart(t)) return IClearingPool.PoolIntervalOpen.selector;
        bool pending =
            g.cleared && g.reportedCells < g.scheduledBuyers + g.scheduledSellers && currentTime < _windowEnd(t);
        uint256 unpaid = g.scheduledBuyers - g.buyersClaimed;
        for (uint256 i = 0; i < list.length; ++i) {
            PositionGhost storage p = _pg[t][list[i]];
            if (p.orderCount == 0) return IClearingPool.PoolNoPosition.selector;
            if (p.claimed || _seenBefore(list, i)) continue;
            if (!g.cleared || p.filledWh == 0) continue;
            if (pending) return IClearingPool.PoolSettlementPending.selector;
            if (p.isBuy) --unpaid;
            else if (unpaid != 0) return IClearingPool.PoolBuyersUnpaid.selector;
        }
        return bytes4(0);
    }

    function _seenBefore(uint256[] memory list, uint256 i) internal pure returns (bool) {
        for (uint256 j = 0; j < i; ++j) {
            if (list[j] == list[i]) return true;
        }
        return false;
    }

    function _claimAndRecord(uint64 t, uint256[] memory list) internal {
        uint256[] memory before = new uint256[](list.length);
        for (uint256 i = 0; i < list.length; ++i) {
            before[i] = _total(list[i]);
        }
        pool.claim(t, list);
        ++callsClaimed;
        for (uint256 i = 0; i < list.length; ++i) {
            PositionGhost storage p = _pg[t][list[i]];
            if (p.claimed || _seenBefore(list, i)) continue;
            p.claimed = true;
            _recordPayout(t, list[i], p, before[i], _total(list[i]));
        }
    }

    function _recordPayout(uint64 t, uint256 cellId, PositionGhost storage p, uint256 before, uint256 after_) internal {
        IntervalGhost storage g = _ig[t];
        CellGhost storage c = _cells[_indexOf[cellId]];
        bool settles = g.cleared && p.filledWh > 0;
        if (!g.cleared) ++voidRefunds;
        if (p.isBuy) {
            if (after_ > before) _violate("a buyer's balance rose at claim");
            p.paid = _u64(before > after_ ? before - after_ : 0);
            g.paid += p.paid;
            if (settles) {
                p.expected = _u64(_expectedPay(t, p));
                g.expectedPot += p.expected;
                g.buyersClaimed += 1;
            }
            c.expectedPaid += p.expected;
        } else {
            if (after_ < before) _violate("a seller's balance fell at claim");
            p.received = _u64(after_ > before ? after_ - before : 0);
            g.received += p.received;
            if (settles) p.expected = _u64(_expectedReceipt(t, g, p));
            c.expectedReceived += p.expected;
            if (p.received > 0) ++sellersPaid;
        }
    }

    /// Buyers pay P * q * E / Qb, rounded down, where q is what they took (their fill
    /// without a reading) and E = min(Qs, Qb) (ClearingPool._payOut, docs/contracts.md).
    function _expectedPay(uint64 t, PositionGhost storage p) internal view returns (uint256) {
        (uint256 qs, uint256 qb) = imbalance(t);
        if (qb == 0) return 0;
        uint256 traded = qs < qb ? qs : qb;
        uint256 q = p.reported ? p.deliveredWh : p.filledWh;
        return (_ig[t].price * q * traded) / (qb * 1000);
    }

    /// Sellers share the pot in proportion to metered energy, cumulative rounding in claim
    /// order; no reading, nothing.
    function _expectedReceipt(uint64 t, IntervalGhost storage g, PositionGhost storage p)
        internal
        returns (uint256 amount)
    {
        (uint256 qs,) = imbalance(t);
        uint256 q = p.reported ? p.deliveredWh : 0;
        if (qs == 0) return 0;
        uint256 before = g.sellClaimedWh;
        g.sellClaimedWh = _u64(before + q);
        return ((before + q) * g.expectedPot) / qs - (before * g.expectedPot) / qs;
    }

    function _total(uint256 cellId) internal view returns (uint256) {
        (uint256 a, uint256 l) = wallets.balanceOf(cellId);
        return a + l;
    }

    /// Calls `data` on the pool as `caller` and requires it to revert with `expected`.
    /// @return refused Whether the call reverted (with whatever error).
    function _probe(address caller, bytes memory data, bytes4 expected, string memory what)
        internal
        returns (bool refused)
    {
        ++callsProbed;
        vm.prank(caller);
        (bool success, bytes memory err) = address(pool).call(data);
        if (success) {
            _violate(string.concat(what, ": went through, expected a revert"));
        } else if (err.length < 4 || bytes4(err) != expected) {
            _violate(string.concat(what, ": reverted with the wrong error"));
        }
        return !success;
    }

    /// Fuzzed seeds are often small or repeated dictionary values; hashing spreads their bits.
    function _mix(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed)));
    }

    function _violate(string memory what) internal {
        ++violations;
        lastViolation = what;
    }
}
