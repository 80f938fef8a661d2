// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellRegistry} from "../../src/CellRegistry.sol";
import {CellWallets} from "../../src/CellWallets.sol";
import {DebtChannels} from "../../src/DebtChannels.sol";
import {DevnetToken} from "../../src/DevnetToken.sol";
import {ICellWallets} from "../../src/interfaces/ICellWallets.sol";
import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {IDebtChannels} from "../../src/interfaces/IDebtChannels.sol";
import {CellType} from "../../src/types/CellTypes.sol";
import {Test} from "../utils/Test.sol";

/// @notice Drives the debt channels for the invariant campaign. A fixed set of cells (two pure
/// sellers, two pure buyers and a prosumer that does both) opens deals on the sellers' meters,
/// the meters count exported energy and sign a reading after each interval, the buyers' agents
/// sign vouchers (fair, or for less), the sellers redeem them or prove delivery with readings
/// alone, and the channels close every way they can: unilaterally (with a challenge window
/// and a settlement), with the seller's last voucher, or cooperatively. Collateral is topped up
/// and withdrawn; what a closing channel cannot pay becomes the buyer's debt, which deposits
/// repay and creditors collect. Every action bounds its inputs and returns early when it does
/// not apply, so a revert is a finding (`fail_on_revert`); calls that must fail go through
/// `_probe`, which counts an unexpected success or a wrong error as a violation.
/// @dev The ghost state is the handler's own model of what must happen, not a copy of the
/// contracts' sums: per channel the collateral committed, paid out, refunded and withdrawn
/// (paid = what is owed as far as the collateral goes), what is owed (the highest accepted
/// voucher or proven amount, from the vouchers the handler signed and the readings it
/// presented), and the meter's true counter when the deal began; per cell the balance the
/// wallets must show and the debt recorded and repaid (every credit repays debt first, in
/// recording order). The handler keeps the clock and warps to it at the start of every action.
contract ChannelHandler is Test {
    /// What a picked channel must be ready for.
    enum Want {
        Live,
        Open,
        Closing,
        /// Open, or closing before the deadline: vouchers and readings still count.
        Accepting,
        /// Accepting, with a reading of the deal.
        Read,
        /// Accepting, with a voucher signed and not yet accepted.
        Newer,
        /// Accepting, with a voucher accepted (so older ones are stale).
        Stale,
        /// Open, with a withdrawal requested.
        Withdrawal,
        /// Closing (window open or not), with a voucher signed and not yet accepted.
        ClosingNewer,
        /// Open, its deal not begun yet (a deal called off before it starts).
        Future
    }

    struct CellGhost {
        uint256 id;
        address owner;
        uint256 agentKey;
        /// What the wallets must hold for the cell in all. The channels move collateral out of
        /// the cell into their own account, so nothing is ever locked here (only the pool locks).
        uint128 total;
        /// Debt recorded against the cell and repaid by it, cumulative.
        uint128 recorded;
        uint128 repaid;
    }

    struct MeterGhost {
        uint256 key;
        address addr;
        uint8 cell;
        /// The export counter now (an honest meter's: it only grows).
        uint64 cumWh;
        /// The last interval the meter signed a reading for (0 = none).
        uint64 lastRead;
    }

    struct ReadingGhost {
        bool exists;
        uint64 exportWh;
        uint64 cumWh;
    }

    /// A voucher the buyer's agent signed, and the interval of the reading it carries (the
    /// deal's latest when it was signed); its seq is its index + 1.
    struct VoucherGhost {
        uint64 wh;
        uint96 amount;
        uint64 reading;
    }

    /// A debt as the wallets must record it: the range [start, end) of the debtor's
    /// cumulative recorded debt.
    struct DebtGhost {
        uint8 debtor;
        uint8 creditor;
        uint128 start;
        uint128 end;
        uint128 collected;
    }

    struct ChannelGhost {
        IDebtChannels.Deal deal;
        bytes32 id;
        uint8 buyer;
        uint8 seller;
        uint8 meter;
        IDebtChannels.Status status;
        /// Closed on an amount both agents signed.
        bool cooperative;
        bool hasReading;
        /// Whether readings were presented, and the lowest start-of-interval counter among
        /// them (what the channel must hold as the deal's baseline).
        bool hasBase;
        uint64 baseWh;
        uint32 signedSeq;
        uint32 acceptedSeq;
        /// The channel's seq as last observed after an action.
        uint32 seenSeq;
        uint40 deadline;
        uint64 endInterval;
        uint40 withdrawalAt;
        uint96 withdrawalAmount;
        uint64 firstRead;
        uint64 lastRead;
        uint64 lastReadCumWh;
        /// The meter's counter when the deal began (export before it included).
        uint64 trueBaseWh;
        uint96 committed;
        uint96 collateral;
        uint96 paid;
        uint96 owed;
        /// The highest amount of an accepted voucher, and proven by readings alone.
        uint96 maxVoucher;
        uint96 maxEvidence;
        /// The cooperative final amount, and what had been paid before it was agreed.
        uint96 finalAmount;
        uint96 paidBeforeFinal;
        uint96 withdrawn;
        uint96 refunded;
        /// Owed and not covered by the collateral at the close; of it, what the buyer's
        /// available balance paid at once and what became debt.
        uint96 shortfall;
        uint96 paidAtOnce;
        uint96 debtRecorded;
    }

    uint32 internal constant LIMIT_W = 100_000; // 25,000 Wh per 15-minute interval
    /// About one deal's worth: buyers run short, so closes leave debt.
    uint256 internal constant BUYER_FUNDS = 300_000;
    uint256 internal constant MAX_METERS = 3;
    uint256 internal constant SELLERS = 3; // cells 0, 1 and 2 (the prosumer) sell
    uint256 internal constant BUYERS = 3; // cells 2, 3 and 4 buy
    address internal constant STRANGER = address(0x57A2);

    DevnetToken internal immutable token;
    CellRegistry internal immutable registry;
    CellWallets internal immutable wallets;
    DebtChannels internal immutable channels;
    uint256 internal immutable intervalSeconds;
    uint256 internal immutable window;
    uint256 internal immutable delay;

    uint256 public currentTime;
    /// The channel the current action picked, + 1 (0 = none).
    uint256 internal _touched;
    uint256 internal _keySeed = 0xDEB7;
    uint64 internal _salt;

    CellGhost[] internal _cells;
    MeterGhost[] internal _meters;
    mapping(uint256 cell => uint8[] meters) internal _metersOf;
    ChannelGhost[] internal _channels;
    mapping(bytes32 channel => VoucherGhost[]) internal _vouchers;
    mapping(uint256 meter => mapping(uint64 interval => ReadingGhost)) internal _readings;
    DebtGhost[] internal _debts;

    uint256 public ghostMinted;
    /// What the channels' account in the wallets must hold: the live channels' collateral.
    uint256 public ghostMarket;
    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostRepaid;
    uint256 public ghostCollected;
    uint256 public ghostRecorded;
    uint256 public violations;
    string public lastViolation;

    /// What the campaign reached, for judging its coverage.
    uint256 public callsOpened;
    uint256 public callsDelivered;
    uint256 public callsSigned;
    uint256 public callsRedeemed;
    uint256 public callsProven;
    uint256 public callsStaleRefused;
    uint256 public callsCloseStarted;
    /// Closes started while another deal of the same meter was closing (the contract then
    /// keeps the close record in the channel's own slot instead of the meter's).
    uint256 public closesBesideAnother;
    uint256 public callsClosedWithVoucher;
    uint256 public callsChallenged;
    uint256 public callsSettled;
    uint256 public callsCooperative;
    uint256 public callsToppedUp;
    uint256 public callsWithdrawalRequested;
    uint256 public callsCollateralWithdrawn;
    uint256 public callsDeposited;
    uint256 public callsRepaid;
    uint256 public callsCollected;
    uint256 public callsWithdrawn;
    uint256 public callsMeterAdded;
    uint256 public callsProbed;
    uint256 public shortfalls;
    uint256 public debtsRecorded;

    constructor(DevnetToken token_, CellRegistry registry_, CellWallets wallets_, DebtChannels channels_) {
        token = token_;
        registry = registry_;
        wallets = wallets_;
        channels = channels_;
        intervalSeconds = channels_.intervalSeconds();
        window = channels_.challengeWindow();
        delay = channels_.withdrawalDelay();
        currentTime = block.timestamp;
        _newCell(CellType.StochasticGenerator, 0);
        _newCell(CellType.LoadFollowingGenerator, 0);
        _newCell(CellType.Prosumer, BUYER_FUNDS);
        _newCell(CellType.PassiveConsumer, BUYER_FUNDS);
        _newCell(CellType.ActiveConsumer, BUYER_FUNDS);
        // Two deals from the start, so every run has channels to work on.
        _open(uint256(keccak256("first deal")));
        _open(uint256(keccak256("second deal")));
    }

    modifier step() {
        vm.warp(currentTime);
        _;
        if (_touched != 0) _watchSeq(_touched - 1);
    }

    // Deals

    /// Opens a deal between a buyer and a seller on one of the seller's meters, starting after
    /// whatever the meter is booked for; a buyer in debt must be refused.
    function openDeal(uint256 seed) external step {
        _open(_mix(seed));
    }

    /// The deal's meter signs its reading for the next interval of the deal (warping to the
    /// end of that interval): export at the cap, below, above it, or next to nothing. Before
    /// the deal's first reading the counter runs on from export outside the deal; now and
    /// then an interval passes without a reading.
    function deliver(uint256 seed, uint256 energy) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Accepting);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        MeterGhost storage m = _meters[g.meter];
        uint64 end = g.status == IDebtChannels.Status.Open ? g.deal.lastInterval : g.endInterval;
        uint64 t = m.lastRead + 1 > g.deal.firstInterval ? m.lastRead + 1 : g.deal.firstInterval;
        bool skip = (seed >> 8) % 5 == 0 && t < end;
        if (skip) t += 1;
        if (t > end) return;
        if (!g.hasReading) {
            // Deals on a meter never overlap, so the meter has read nothing of this one yet.
            if (m.lastRead >= g.deal.firstInterval) _violate("a meter read a deal before it began");
            m.cumWh += uint64((seed >> 16) % 5000);
            g.trueBaseWh = m.cumWh;
        }
        if (skip) m.cumWh += uint64((seed >> 32) % (2 * uint256(g.deal.maxWhPerInterval)));
        uint256 intervalEnd = (uint256(t) + 1) * intervalSeconds;
        if (currentTime < intervalEnd) _warp(intervalEnd + (seed >> 48) % 120);
        uint64 e = _export(g.deal.maxWhPerInterval, energy);
        m.cumWh += e;
        m.lastRead = t;
        _readings[g.meter][t] = ReadingGhost({exists: true, exportWh: e, cumWh: m.cumWh});
        if (!g.hasReading) {
            g.hasReading = true;
            g.firstRead = t;
        }
        g.lastRead = t;
        g.lastReadCumWh = m.cumWh;
        ++callsDelivered;
    }

    /// The buyer's agent signs the next voucher: for everything the readings prove at the deal
    /// price (twice as likely), for less money, or for fewer Wh.
    function signVoucher(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Read);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        uint256 wh = _provableWh(g);
        uint256 mode = (seed >> 8) % 4;
        if (mode == 3) wh = (seed >> 16) % (wh + 1);
        uint256 fair = (wh * g.deal.pricePerKWh) / 1000;
        uint256 amount = mode == 2 ? (fair * ((seed >> 80) % 8)) / 8 : fair;
        _vouchers[g.id].push(VoucherGhost({wh: uint64(wh), amount: uint96(amount), reading: g.lastRead}));
        g.signedSeq += 1;
        ++callsSigned;
    }

    /// The seller redeems the latest voucher with the reading it carries: paid at once while
    /// open, at settlement while closing. Now and then the buyer's agent signed a voucher for
    /// more Wh than the latest reading proves, which must be refused.
    function redeem(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Newer);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        if ((seed >> 8) % 8 == 0) {
            uint64 wh = uint64(_provableWh(g) + 1);
            IDebtChannels.SignedVoucher memory bad = _sign(g, g.signedSeq + 1, wh, 0);
            IClearingPool.SignedReading memory latest = _reading(g, g.lastRead);
            _probe(
                _agent(g.seller),
                address(channels),
                abi.encodeCall(channels.redeem, (g.deal, bad, latest)),
                IDebtChannels.ChannelVoucherOverMetered.selector,
                "a voucher for more than the readings prove"
            );
            return;
        }
        uint32 seq = g.signedSeq;
        IDebtChannels.SignedVoucher memory sv = _signedVoucher(g, seq);
        IClearingPool.SignedReading memory rs = _voucherReading(g, seq);
        IDebtChannels.Deal memory d = g.deal;
        vm.prank(_agent(g.seller));
        channels.redeem(d, sv, rs);
        _accept(g, seq);
        if (g.status == IDebtChannels.Status.Open) _pay(g);
        ++callsRedeemed;
    }

    /// The evidence path: anyone hands in readings of the deal (the first and latest, the
    /// latest alone, one in between, or one in between and the latest).
    function redeemWithReadings(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Read);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        uint64[] memory ts = _evidence(g, seed >> 8);
        IClearingPool.SignedReading[] memory rs = _signedReadings(g, ts);
        IDebtChannels.Deal memory d = g.deal;
        vm.prank((seed >> 40) % 2 == 0 ? _agent(g.seller) : STRANGER);
        channels.redeemWithReadings(d, rs);
        uint256 amount = (_proveGhost(g, ts) * g.deal.pricePerKWh) / 1000;
        if (amount > g.maxEvidence) g.maxEvidence = uint96(amount);
        if (amount > g.owed) g.owed = uint96(amount);
        if (g.status == IDebtChannels.Status.Open) _pay(g);
        ++callsProven;
    }

    /// Hands in a voucher older than the latest accepted (redeem, challenge or close with
    /// it): it must be refused as stale, whatever it says.
    function submitStale(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Stale);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        uint32 seq = uint32(1 + (seed >> 8) % g.acceptedSeq);
        IDebtChannels.SignedVoucher memory sv = _signedVoucher(g, seq);
        IClearingPool.SignedReading memory rs = _voucherReading(g, seq);
        uint256 route = (seed >> 16) % 3;
        bytes memory data;
        if (route == 1 && g.status == IDebtChannels.Status.Closing) {
            data = abi.encodeCall(channels.challenge, (g.deal, sv, rs));
        } else if (route == 2) {
            data = abi.encodeCall(channels.closeWithVoucher, (g.deal, sv, rs));
        } else {
            data = abi.encodeCall(channels.redeem, (g.deal, sv, rs));
        }
        bool refused = _probe(
            _agent(g.seller),
            address(channels),
            data,
            IDebtChannels.ChannelStaleVoucher.selector,
            "a stale voucher was not refused as stale"
        );
        if (refused) ++callsStaleRefused;
    }

    // Closing

    /// A party starts a unilateral close: the seller at any time (mostly with its latest
    /// voucher, if it has one not yet redeemed), the buyer once delivery is over (before, it
    /// must be refused). On a closing channel a second call must change nothing. Half the
    /// time a deal that has not begun is called off, if there is one.
    function startClose(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pickOften(seed, Want.Future, Want.Live);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        bool byBuyer = (seed >> 8) % 2 == 0;
        uint8 party = byBuyer ? g.buyer : g.seller;
        address caller = (seed >> 12) % 2 == 0 ? _agent(party) : _cells[party].owner;
        IDebtChannels.Deal memory d = g.deal;
        if (g.status == IDebtChannels.Status.Closing) {
            vm.prank(caller);
            channels.startClose(d);
            if (channels.channelOf(g.id, g.deal.sellerMeter).closeDeadline != g.deadline) {
                _violate("a second close moved the deadline");
            }
            return;
        }
        if (byBuyer) {
            uint256 deliveryEnd = (uint256(d.lastInterval) + 1) * intervalSeconds;
            if (currentTime < deliveryEnd) {
                if ((seed >> 16) % 2 == 0) {
                    _probe(
                        caller,
                        address(channels),
                        abi.encodeCall(channels.startClose, (d)),
                        IDebtChannels.ChannelTooEarlyToClose.selector,
                        "the buyer closed before delivery ended"
                    );
                    return;
                }
                _warp(deliveryEnd + (seed >> 24) % 600);
            }
        }
        if (!byBuyer && g.signedSeq > g.acceptedSeq && (seed >> 32) % 4 != 0) {
            uint32 seq = g.signedSeq;
            IDebtChannels.SignedVoucher memory sv = _signedVoucher(g, seq);
            IClearingPool.SignedReading memory rs = _voucherReading(g, seq);
            vm.prank(caller);
            channels.closeWithVoucher(d, sv, rs);
            _closing(g);
            _accept(g, seq);
            ++callsClosedWithVoucher;
        } else {
            vm.prank(caller);
            channels.startClose(d);
            _closing(g);
        }
        ++callsCloseStarted;
    }

    /// Anyone hands in the latest voucher of a closing channel: counted during the window,
    /// refused after it.
    function challenge(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.ClosingNewer);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        uint32 seq = g.signedSeq;
        IDebtChannels.SignedVoucher memory sv = _signedVoucher(g, seq);
        IClearingPool.SignedReading memory rs = _voucherReading(g, seq);
        IDebtChannels.Deal memory d = g.deal;
        if (currentTime >= g.deadline) {
            _probe(
                STRANGER,
                address(channels),
                abi.encodeCall(channels.challenge, (d, sv, rs)),
                IDebtChannels.ChannelWindowClosed.selector,
                "a challenge after the window"
            );
            return;
        }
        vm.prank(STRANGER);
        channels.challenge(d, sv, rs);
        _accept(g, seq);
        ++callsChallenged;
    }

    /// Settles a closing channel once its window is over (warping there), or tries too early.
    function settle(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Closing);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        IDebtChannels.Deal memory d = g.deal;
        if (!_waitUntil(
                g.deadline,
                seed,
                abi.encodeCall(channels.settle, (d)),
                IDebtChannels.ChannelWindowOpen.selector,
                "settled before the window ended"
            )) return;
        vm.prank(STRANGER);
        channels.settle(d);
        _finish(g, g.endInterval);
        ++callsSettled;
    }

    /// Both agents sign a final amount: what is owed, what the readings prove, more than the
    /// collateral holds, or exactly what was paid. Below what was paid must be refused. Half
    /// the time a deal that has not begun is called off, if there is one.
    function closeCooperative(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pickOften(seed, Want.Future, Want.Live);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        uint256 mode = (seed >> 8) % 6;
        uint256 amount;
        if (mode == 0) {
            amount = g.owed;
        } else if (mode == 1) {
            amount = g.hasReading ? (_provableWh(g) * g.deal.pricePerKWh) / 1000 : 0;
            if (amount < g.paid) amount = g.paid;
        } else if (mode == 2 || mode == 5) {
            amount = g.paid + (seed >> 16) % (2 * uint256(g.committed) + 1);
        } else if (mode == 3 || g.paid == 0) {
            amount = g.paid;
        } else {
            amount = g.paid - 1 - (seed >> 16) % g.paid; // refused below
        }
        bytes32 digest = channels.hashClose(g.id, uint96(amount));
        bytes memory buyerSig = _signDigest(_cells[g.buyer].agentKey, digest, seed >> 24);
        bytes memory sellerSig = _signDigest(_cells[g.seller].agentKey, digest, seed >> 25);
        IDebtChannels.Deal memory d = g.deal;
        if (amount < g.paid) {
            _probe(
                STRANGER,
                address(channels),
                abi.encodeCall(channels.closeCooperative, (d, uint96(amount), buyerSig, sellerSig)),
                IDebtChannels.ChannelFinalBelowPaid.selector,
                "a cooperative close below what was paid"
            );
            return;
        }
        vm.prank(STRANGER);
        channels.closeCooperative(d, uint96(amount), buyerSig, sellerSig);
        uint64 end = g.endInterval;
        if (g.status == IDebtChannels.Status.Open) {
            uint64 current = uint64(currentTime / intervalSeconds);
            end = current < d.lastInterval ? current : d.lastInterval;
        }
        g.cooperative = true;
        g.finalAmount = uint96(amount);
        g.paidBeforeFinal = g.paid;
        g.owed = uint96(amount);
        _finish(g, end);
        ++callsCooperative;
    }

    // Collateral

    /// The buyer adds collateral (refused while it is in debt); what is owed and was not
    /// covered is paid from it at once.
    function topUp(uint256 seed, uint256 amount) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Open);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        CellGhost storage b = _cells[g.buyer];
        address caller = (seed >> 8) % 2 == 0 ? _agent(g.buyer) : b.owner;
        IDebtChannels.Deal memory d = g.deal;
        if (b.recorded > b.repaid) {
            _probe(
                caller,
                address(channels),
                abi.encodeCall(channels.topUp, (d, 1)),
                ICellWallets.WalletCellInDebt.selector,
                "a buyer in debt topped up"
            );
            return;
        }
        uint256 free = b.total;
        if (free == 0) return;
        amount = bound(amount, 1, free);
        vm.prank(caller);
        channels.topUp(d, uint96(amount));
        _commit(g.buyer, amount);
        g.committed += uint96(amount);
        g.collateral += uint96(amount);
        _pay(g);
        ++callsToppedUp;
    }

    /// The buyer asks for collateral back, sometimes more than is free.
    function requestWithdrawal(uint256 seed, uint256 amount) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Open);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        amount = bound(amount, 1, uint256(g.collateral) + 1000);
        IDebtChannels.Deal memory d = g.deal;
        vm.prank((seed >> 8) % 2 == 0 ? _agent(g.buyer) : _cells[g.buyer].owner);
        channels.requestWithdrawal(d, uint96(amount));
        g.withdrawalAmount = uint96(amount);
        g.withdrawalAt = uint40(currentTime + delay);
        ++callsWithdrawalRequested;
    }

    /// Carries out a withdrawal once due (warping there), or tries too early. What is owed
    /// and unpaid stays for the seller.
    function withdrawCollateral(uint256 seed) external step {
        seed = _mix(seed);
        (uint256 i, bool found) = _pick(seed, Want.Withdrawal);
        if (!found) return;
        ChannelGhost storage g = _channels[i];
        IDebtChannels.Deal memory d = g.deal;
        if (!_waitUntil(
                g.withdrawalAt,
                seed,
                abi.encodeCall(channels.withdrawCollateral, (d)),
                IDebtChannels.ChannelWithdrawalNotDue.selector,
                "a withdrawal before it was due"
            )) return;
        vm.prank(STRANGER);
        channels.withdrawCollateral(d);
        uint256 unpaid = g.owed - g.paid;
        uint256 free = g.collateral > unpaid ? g.collateral - unpaid : 0;
        uint256 amount = g.withdrawalAmount < free ? g.withdrawalAmount : free;
        g.collateral -= uint96(amount);
        g.withdrawn += uint96(amount);
        if (amount > 0) _payOut(g.buyer, amount);
        g.withdrawalAmount = 0;
        g.withdrawalAt = 0;
        ++callsCollateralWithdrawn;
    }

    // Wallets

    /// Faucet money into a cell, most often one in debt (which it repays first).
    function deposit(uint256 seed, uint256 amount) external step {
        seed = _mix(seed);
        uint8 c = _cellMostlyIndebted(seed);
        amount = bound(amount, 1, 400_000);
        token.faucet(address(this), amount);
        ghostMinted += amount;
        token.approve(address(wallets), amount);
        wallets.deposit(_cells[c].id, amount);
        ghostDeposited += amount;
        _credit(c, amount);
        ++callsDeposited;
    }

    /// Anyone repays a cell's debt from its available balance (refunds that came back while
    /// it owed).
    function repayDebt(uint256 seed) external step {
        seed = _mix(seed);
        uint8 c = _cellMostlyIndebted(seed);
        vm.prank(STRANGER);
        wallets.repayDebt(_cells[c].id);
        CellGhost storage x = _cells[c];
        uint256 owe = x.recorded - x.repaid;
        uint256 repaid = owe < x.total ? owe : x.total;
        x.repaid += uint128(repaid);
        x.total -= uint128(repaid);
        ghostRepaid += repaid;
        ++callsRepaid;
    }

    /// Anyone collects for a debt's creditor what was repaid of it; an unknown debt must be
    /// refused.
    function collectDebt(uint256 seed) external step {
        seed = _mix(seed);
        uint256 n = _debts.length;
        if (n == 0 || (seed >> 8) % 8 == 0) {
            _probe(
                STRANGER,
                address(wallets),
                abi.encodeCall(wallets.collectDebt, (n + 1)),
                ICellWallets.WalletUnknownDebt.selector,
                "collected an unknown debt"
            );
            return;
        }
        uint256 id = 1 + seed % n;
        DebtGhost storage x = _debts[id - 1];
        uint256 expected = _collectable(x);
        vm.prank(STRANGER);
        uint256 got = wallets.collectDebt(id);
        if (got != expected) _violate("collected other than what was repaid of the debt");
        x.collected += uint128(expected);
        ghostCollected += expected;
        _credit(x.creditor, expected);
        ++callsCollected;
    }

    /// The owner takes available money out of the wallets, often all of it, and most often a
    /// buyer's (whose closes then leave debt); refused while the cell owes.
    function withdraw(uint256 seed, uint256 amount) external step {
        seed = _mix(seed);
        uint8 c = uint8((seed >> 16) % 4 != 0 ? 2 + seed % BUYERS : seed % _cells.length);
        CellGhost storage x = _cells[c];
        uint256 free = x.total;
        if (x.recorded > x.repaid) {
            _probe(
                x.owner,
                address(wallets),
                abi.encodeCall(wallets.withdraw, (x.id, free > 0 ? free : 1, x.owner)),
                ICellWallets.WalletCellInDebt.selector,
                "a cell in debt withdrew"
            );
            return;
        }
        if (free == 0) return;
        amount = (seed >> 8) % 2 == 0 ? free : bound(amount, 1, free);
        vm.prank(x.owner);
        wallets.withdraw(x.id, amount, x.owner);
        x.total -= uint128(amount);
        ghostWithdrawn += amount;
        ++callsWithdrawn;
    }

    /// A seller's owner adds a meter (up to three per seller), so it can run deals side by side.
    function addMeter(uint256 seed) external step {
        seed = _mix(seed);
        uint8 s = uint8(seed % SELLERS);
        if (_metersOf[s].length >= MAX_METERS) return;
        _addMeter(s, seed >> 8);
        ++callsMeterAdded;
    }

    function warp(uint256 seconds_) external step {
        _warp(currentTime + bound(seconds_, 1, 2 hours));
    }

    /// Called once after each run: closes every channel (the seller starts the close of open
    /// ones), settles them after the windows, repays every debt with a deposit and collects
    /// every debt for its creditor, so the test can check that nothing is left locked, owed or
    /// held.
    function finalize() external step {
        uint256 latest = currentTime;
        for (uint256 i = 0; i < _channels.length; ++i) {
            ChannelGhost storage g = _channels[i];
            if (g.status == IDebtChannels.Status.Open) {
                IDebtChannels.Deal memory d = g.deal;
                vm.prank(_agent(g.seller));
                channels.startClose(d);
                _closing(g);
            }
            if (g.status == IDebtChannels.Status.Closing && g.deadline > latest) latest = g.deadline;
        }
        _warp(latest);
        for (uint256 i = 0; i < _channels.length; ++i) {
            ChannelGhost storage g = _channels[i];
            if (g.status != IDebtChannels.Status.Closing) continue;
            channels.settle(g.deal);
            _finish(g, g.endInterval);
        }
        for (uint8 c = 0; c < _cells.length; ++c) {
            uint256 owe = _cells[c].recorded - _cells[c].repaid;
            if (owe == 0) continue;
            token.faucet(address(this), owe);
            ghostMinted += owe;
            token.approve(address(wallets), owe);
            wallets.deposit(_cells[c].id, owe);
            ghostDeposited += owe;
            _credit(c, owe);
        }
        for (uint256 id = 1; id <= _debts.length; ++id) {
            DebtGhost storage x = _debts[id - 1];
            uint256 expected = _collectable(x);
            if (wallets.collectDebt(id) != expected) _violate("collected other than what was repaid of the debt");
            x.collected += uint128(expected);
            ghostCollected += expected;
            _credit(x.creditor, expected);
        }
    }

    // Views for the invariants. Each returns the ghosts together with what the contracts
    // say about the same things, read here in one call: forge's inspectors (and --isolate)
    // make every external call of a check count, and checks run after every call.

    /// What the wallets show for a cell.
    struct CellView {
        uint256 available;
        uint256 locked;
        uint256 debt;
        /// Tokens the cell's owner holds outside the wallets (its withdrawals).
        uint256 ownerTokens;
    }

    /// What the wallets record for a debt, and what its creditor can collect now (real and
    /// by the ghost ledger).
    struct DebtView {
        ICellWallets.Debt debt;
        uint256 collectable;
        uint256 ghostCollectable;
    }

    /// The ghost totals, in one call.
    struct Totals {
        uint256 minted;
        uint256 deposited;
        uint256 withdrawn;
        uint256 market;
        uint256 repaid;
        uint256 collected;
        uint256 recorded;
        uint256 violations;
    }

    function totals() external view returns (Totals memory) {
        return Totals({
            minted: ghostMinted,
            deposited: ghostDeposited,
            withdrawn: ghostWithdrawn,
            market: ghostMarket,
            repaid: ghostRepaid,
            collected: ghostCollected,
            recorded: ghostRecorded,
            violations: violations
        });
    }

    /// The cells' ghosts and balances; their debts and their owners' tokens only when asked.
    function cells(bool withDebts, bool withOwnerTokens)
        external
        view
        returns (CellGhost[] memory gs, CellView[] memory vs)
    {
        gs = _cells;
        vs = new CellView[](gs.length);
        for (uint256 c = 0; c < gs.length; ++c) {
            (vs[c].available, vs[c].locked) = wallets.balanceOf(gs[c].id);
            if (withDebts) vs[c].debt = wallets.debtOf(gs[c].id);
            if (withOwnerTokens) vs[c].ownerTokens = token.balanceOf(gs[c].owner);
        }
    }

    function channelGhosts() external view returns (ChannelGhost[] memory gs, IDebtChannels.Channel[] memory chs) {
        gs = _channels;
        chs = new IDebtChannels.Channel[](gs.length);
        for (uint256 i = 0; i < gs.length; ++i) {
            chs[i] = channels.channelOf(gs[i].id, gs[i].deal.sellerMeter);
        }
    }

    function meters() external view returns (MeterGhost[] memory ms, uint64[] memory booked) {
        ms = _meters;
        booked = new uint64[](ms.length);
        for (uint256 i = 0; i < ms.length; ++i) {
            booked[i] = channels.bookedThrough(ms[i].addr);
        }
    }

    function debts() external view returns (DebtGhost[] memory ds, DebtView[] memory vs) {
        ds = _debts;
        vs = new DebtView[](ds.length + 1);
        // One past the last: a debt never recorded, which must hold nothing.
        for (uint256 k = 0; k <= ds.length; ++k) {
            (vs[k].debt, vs[k].collectable) = wallets.debtById(k + 1);
            if (k < ds.length) vs[k].ghostCollectable = _collectable(_debts[k]);
        }
    }

    /// The vouchers the buyer signed on a channel: what to look at when an invariant fails.
    function vouchersOf(bytes32 channel) external view returns (VoucherGhost[] memory) {
        return _vouchers[channel];
    }

    // Internals: deals and proofs

    function _open(uint256 seed) internal {
        uint8 b = uint8(2 + seed % BUYERS);
        uint8 s = uint8((seed >> 8) % SELLERS);
        if (s == b) s = uint8((seed >> 12) % 2);
        uint8[] storage ms = _metersOf[s];
        uint8 mi = ms[(seed >> 16) % ms.length];
        IDebtChannels.Deal memory d = _terms(b, s, mi, seed >> 24);
        CellGhost storage buyer = _cells[b];
        if (buyer.recorded > buyer.repaid) {
            _probe(
                STRANGER,
                address(channels),
                _openCall(d, b, s, seed),
                ICellWallets.WalletCellInDebt.selector,
                "a buyer in debt opened a deal"
            );
            return;
        }
        uint256 free = buyer.total;
        if (free == 0) return;
        if (d.collateral > free) d.collateral = uint96(free);
        bytes memory data = _openCall(d, b, s, seed);
        vm.prank(STRANGER);
        (bool ok, bytes memory ret) = address(channels).call(data);
        if (!ok) _bubble(ret);
        bytes32 id = abi.decode(ret, (bytes32));
        if (id != channels.channelId(d)) _violate("the channel id is not the deal's digest");
        _commit(b, d.collateral);
        ChannelGhost storage g = _channels.push();
        g.deal = d;
        g.id = id;
        g.buyer = b;
        g.seller = s;
        g.meter = mi;
        g.status = IDebtChannels.Status.Open;
        g.committed = d.collateral;
        g.collateral = d.collateral;
        ++callsOpened;
    }

    /// `open` of the deal, signed by both agents.
    function _openCall(IDebtChannels.Deal memory d, uint8 b, uint8 s, uint256 seed)
        internal
        view
        returns (bytes memory)
    {
        bytes32 digest = channels.channelId(d);
        bytes memory buyerSig = _signDigest(_cells[b].agentKey, digest, seed);
        bytes memory sellerSig = _signDigest(_cells[s].agentKey, digest, seed >> 1);
        return abi.encodeCall(channels.open, (d, buyerSig, sellerSig));
    }

    /// Re-raises a revert as it came, so fail_on_revert reports the contract's own error.
    function _bubble(bytes memory err) internal pure {
        assembly ("memory-safe") {
            revert(add(err, 0x20), mload(err))
        }
    }

    /// One to four intervals from the first free one after the meter's booking (as the
    /// channels report it: the invariants judge the booking by the deals it lets overlap); a price
    /// that is no multiple of 1000 (every amount rounds); collateral for the whole deal a
    /// quarter of the time, else for an eighth to five eighths of it.
    function _terms(uint8 b, uint8 s, uint8 mi, uint256 r) internal returns (IDebtChannels.Deal memory d) {
        uint64 current = uint64(currentTime / intervalSeconds);
        uint64 booked = channels.bookedThrough(_meters[mi].addr);
        uint64 first = (current > booked ? current : booked) + 1 + uint64(r % 2);
        uint64 n = 1 + uint64((r >> 4) % 4);
        d.buyerCell = _cells[b].id;
        d.sellerCell = _cells[s].id;
        d.sellerMeter = _meters[mi].addr;
        d.pricePerKWh = uint96(150_001 + (r >> 8) % 100_000);
        d.maxWhPerInterval = uint64(500 + (r >> 32) % 2001);
        d.firstInterval = first;
        d.lastInterval = first + n - 1;
        uint256 worth = (uint256(d.maxWhPerInterval) * n * d.pricePerKWh) / 1000;
        d.collateral = uint96((r >> 48) % 4 == 0 ? worth : worth / 8 + (r >> 56) % (worth / 2));
        d.expiry = uint64(currentTime + 1 hours);
        d.salt = ++_salt;
    }

    function _export(uint64 maxWh, uint256 r) internal pure returns (uint64) {
        uint256 mode = r % 4;
        r >>= 8;
        if (mode == 0) return maxWh;
        if (mode == 1) return uint64(r % maxWh);
        if (mode == 2) return uint64(maxWh + 1 + r % maxWh);
        return uint64(r % 50);
    }

    /// What the deal's latest reading proves once handed in: min(counter - baseline,
    /// contracted up to its interval), the baseline lowered to the reading's start if that
    /// is lower. Vouchers carry that reading, so the buyer signs at most this.
    function _provableWh(ChannelGhost storage g) internal view returns (uint256) {
        ReadingGhost storage x = _readings[g.meter][g.lastRead];
        uint64 start = x.cumWh - x.exportWh;
        uint64 base = g.hasBase && g.baseWh < start ? g.baseWh : start;
        uint256 metered = x.cumWh - base;
        uint256 contracted = uint256(g.deal.maxWhPerInterval) * (g.lastRead - g.deal.firstInterval + 1);
        return metered < contracted ? metered : contracted;
    }

    /// The rule of IDebtChannels, recomputed: the baseline is the lowest start-of-interval
    /// counter of every reading presented so far, and the readings prove the largest
    /// min(counter - baseline, contracted up to the reading's interval).
    function _proveGhost(ChannelGhost storage g, uint64[] memory ts) internal returns (uint256 provenWh) {
        mapping(uint64 => ReadingGhost) storage rs = _readings[g.meter];
        for (uint256 k = 0; k < ts.length; ++k) {
            _present(g, ts[k]);
        }
        for (uint256 k = 0; k < ts.length; ++k) {
            uint256 metered = rs[ts[k]].cumWh - g.baseWh;
            uint256 contracted = uint256(g.deal.maxWhPerInterval) * (ts[k] - g.deal.firstInterval + 1);
            uint256 proven = metered < contracted ? metered : contracted;
            if (proven > provenWh) provenWh = proven;
        }
    }

    function _evidence(ChannelGhost storage g, uint256 r) internal view returns (uint64[] memory ts) {
        uint64 t = g.firstRead + uint64(r % (g.lastRead - g.firstRead + 1));
        if (!_readings[g.meter][t].exists) t = g.lastRead;
        uint256 mode = (r >> 16) % 4;
        ts = new uint64[](mode == 0 || mode == 3 ? 2 : 1);
        if (mode == 0) {
            ts[0] = g.firstRead;
            ts[1] = g.lastRead;
        } else if (mode == 1) {
            ts[0] = g.lastRead;
        } else if (mode == 2) {
            ts[0] = t;
        } else {
            ts[0] = t;
            ts[1] = g.lastRead;
        }
    }

    /// A voucher is accepted with the reading it carries: the seq moves to it, what is owed
    /// rises to its amount if higher (never falls), and the reading may lower the baseline.
    function _accept(ChannelGhost storage g, uint32 seq) internal {
        VoucherGhost storage v = _vouchers[g.id][seq - 1];
        g.acceptedSeq = seq;
        if (v.amount > g.maxVoucher) g.maxVoucher = v.amount;
        if (v.amount > g.owed) g.owed = v.amount;
        _present(g, v.reading);
    }

    /// A reading handed in: the baseline is the lowest start-of-interval counter shown so far.
    function _present(ChannelGhost storage g, uint64 t) internal {
        ReadingGhost storage x = _readings[g.meter][t];
        uint64 start = x.cumWh - x.exportWh;
        if (!g.hasBase || start < g.baseWh) {
            g.baseWh = start;
            g.hasBase = true;
        }
    }

    /// Pays the seller what is owed and unpaid, as far as the collateral goes.
    function _pay(ChannelGhost storage g) internal {
        uint96 due = g.owed - g.paid;
        uint96 amount = due < g.collateral ? due : g.collateral;
        if (amount == 0) return;
        g.collateral -= amount;
        g.paid += amount;
        _payOut(g.seller, amount);
    }

    function _closing(ChannelGhost storage g) internal {
        for (uint256 i = 0; i < _channels.length; ++i) {
            ChannelGhost storage o = _channels[i];
            if (o.status == IDebtChannels.Status.Closing && o.meter == g.meter) {
                ++closesBesideAnother;
                break;
            }
        }
        uint64 current = uint64(currentTime / intervalSeconds);
        g.status = IDebtChannels.Status.Closing;
        g.deadline = uint40(currentTime + window);
        g.endInterval = current < g.deal.lastInterval ? current : g.deal.lastInterval;
    }

    /// The close: pays what is owed as far as the collateral goes, refunds the rest, and
    /// records the shortfall against the buyer (its available money pays what it can at once).
    function _finish(ChannelGhost storage g, uint64 end) internal {
        uint96 due = g.owed - g.paid;
        uint96 pay = due < g.collateral ? due : g.collateral;
        uint96 refund = g.collateral - pay;
        uint96 shortfall = due - pay;
        if (pay > 0) _payOut(g.seller, pay);
        if (refund > 0) _payOut(g.buyer, refund);
        g.paid += pay;
        g.collateral = 0;
        g.refunded = refund;
        g.shortfall = shortfall;
        if (shortfall > 0) {
            ++shortfalls;
            (uint256 atOnce, uint256 rest) = _recordDebt(g.buyer, g.seller, shortfall);
            g.paidAtOnce = uint96(atOnce);
            g.debtRecorded = uint96(rest);
        }
        g.status = IDebtChannels.Status.Closed;
        g.endInterval = end;
    }

    // Internals: the wallets' ledger, recomputed

    /// Collateral leaves the buyer's available money for the channels' account.
    function _commit(uint8 buyer, uint256 amount) internal {
        _cells[buyer].total -= uint128(amount);
        ghostMarket += amount;
    }

    /// The channels pay a cell from their account (the seller, or the buyer's refund).
    function _payOut(uint8 c, uint256 amount) internal {
        ghostMarket -= amount;
        _credit(c, amount);
    }

    /// Money in: repays the cell's debt first.
    function _credit(uint8 c, uint256 amount) internal {
        CellGhost storage x = _cells[c];
        uint256 owe = x.recorded - x.repaid;
        uint256 repaid = amount < owe ? amount : owe;
        x.repaid += uint128(repaid);
        ghostRepaid += repaid;
        x.total += uint128(amount - repaid);
    }

    function _recordDebt(uint8 debtor, uint8 creditor, uint256 amount) internal returns (uint256 atOnce, uint256 rest) {
        CellGhost storage x = _cells[debtor];
        atOnce = x.total < amount ? x.total : amount;
        x.total -= uint128(atOnce);
        _credit(creditor, atOnce);
        rest = amount - atOnce;
        if (rest == 0) return (atOnce, 0);
        _debts.push(
            DebtGhost({
                debtor: debtor,
                creditor: creditor,
                start: uint128(x.recorded),
                end: uint128(x.recorded + rest),
                collected: 0
            })
        );
        x.recorded += uint128(rest);
        ghostRecorded += rest;
        ++debtsRecorded;
    }

    /// Repayments fill the debts in the order they were recorded.
    function _collectable(DebtGhost storage x) internal view returns (uint256) {
        uint256 repaid = _cells[x.debtor].repaid;
        uint256 upTo = repaid < x.end ? repaid : x.end;
        uint256 done = uint256(x.start) + x.collected;
        return upTo > done ? upTo - done : 0;
    }

    // Internals: cells, keys, signatures

    function _newCell(CellType cellType, uint256 funds) internal {
        address owner = vm.addr(++_keySeed);
        uint256 agentKey = ++_keySeed;
        uint256 meterKey = ++_keySeed;
        address[] memory ms = new address[](1);
        ms[0] = vm.addr(meterKey);
        uint256 id = registry.connect(owner, cellType, 0, LIMIT_W, LIMIT_W, vm.addr(agentKey), ms);
        uint8 c = uint8(_cells.length);
        _cells.push(
            CellGhost({id: id, owner: owner, agentKey: agentKey, total: uint128(funds), recorded: 0, repaid: 0})
        );
        _pushMeter(c, meterKey, uint64(uint256(keccak256(abi.encode(meterKey))) % 1e9));
        if (funds > 0) {
            token.faucet(address(this), funds);
            token.approve(address(wallets), funds);
            wallets.deposit(id, funds);
            ghostMinted += funds;
            ghostDeposited += funds;
        }
        vm.prank(owner);
        wallets.setDailyCap(id, type(uint256).max);
    }

    function _addMeter(uint8 s, uint256 r) internal {
        uint256 key = ++_keySeed;
        (address owner, uint256 id, address meter) = (_cells[s].owner, _cells[s].id, vm.addr(key));
        vm.prank(owner);
        registry.addMeter(id, meter);
        _pushMeter(s, key, uint64(r % 1e9));
    }

    /// A meter whose counter starts anywhere: deals must measure from their own baseline.
    function _pushMeter(uint8 c, uint256 key, uint64 startWh) internal {
        _metersOf[c].push(uint8(_meters.length));
        _meters.push(MeterGhost({key: key, addr: vm.addr(key), cell: c, cumWh: startWh, lastRead: 0}));
    }

    function _agent(uint8 c) internal view returns (address) {
        return vm.addr(_cells[c].agentKey);
    }

    function _signedVoucher(ChannelGhost storage g, uint32 seq)
        internal
        view
        returns (IDebtChannels.SignedVoucher memory)
    {
        VoucherGhost storage v = _vouchers[g.id][seq - 1];
        return _sign(g, seq, v.wh, v.amount);
    }

    function _sign(ChannelGhost storage g, uint32 seq, uint64 wh, uint96 amount)
        internal
        view
        returns (IDebtChannels.SignedVoucher memory sv)
    {
        sv.voucher = IDebtChannels.Voucher({channel: g.id, seq: seq, cumulativeWh: wh, cumulativeAmount: amount});
        (sv.r, sv.vs) = vm.signCompact(_cells[g.buyer].agentKey, channels.hashVoucher(sv.voucher));
    }

    /// Deals and closes take both signature forms: 65-byte {r, s, v} and 64-byte EIP-2098.
    function _signDigest(uint256 key, bytes32 digest, uint256 r) internal pure returns (bytes memory) {
        if (r % 2 == 0) {
            (bytes32 cr, bytes32 vs) = vm.signCompact(key, digest);
            return abi.encodePacked(cr, vs);
        }
        (uint8 v, bytes32 sr, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(sr, s, v);
    }

    /// The reading voucher `seq` carries.
    function _voucherReading(ChannelGhost storage g, uint32 seq)
        internal
        view
        returns (IClearingPool.SignedReading memory)
    {
        return _reading(g, _vouchers[g.id][seq - 1].reading);
    }

    function _reading(ChannelGhost storage g, uint64 t) internal view returns (IClearingPool.SignedReading memory) {
        uint64[] memory ts = new uint64[](1);
        ts[0] = t;
        return _signedReadings(g, ts)[0];
    }

    function _signedReadings(ChannelGhost storage g, uint64[] memory ts)
        internal
        view
        returns (IClearingPool.SignedReading[] memory rs)
    {
        MeterGhost storage m = _meters[g.meter];
        rs = new IClearingPool.SignedReading[](ts.length);
        for (uint256 k = 0; k < ts.length; ++k) {
            ReadingGhost storage x = _readings[g.meter][ts[k]];
            IClearingPool.MeterReading memory r = IClearingPool.MeterReading({
                meter: m.addr,
                cell: _cells[m.cell].id,
                interval: ts[k],
                importWh: 0,
                exportWh: x.exportWh,
                importCumWh: 0,
                exportCumWh: x.cumWh,
                seq: ts[k]
            });
            (bytes32 sr, bytes32 vs) = vm.signCompact(m.key, channels.hashReading(r));
            rs[k] = IClearingPool.SignedReading({reading: r, r: sr, vs: vs});
        }
    }

    // Internals: picking, time, probes

    /// The first channel from a random start that is ready for `want`; it is watched after
    /// the action.
    function _pick(uint256 seed, Want want) internal returns (uint256, bool) {
        uint256 n = _channels.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (seed + k) % n;
            if (_fits(_channels[i], want)) {
                _touched = i + 1;
                return (i, true);
            }
        }
        return (0, false);
    }

    /// A channel ready for `often` half the time (if there is one), else for `otherwise`.
    function _pickOften(uint256 seed, Want often, Want otherwise) internal returns (uint256 i, bool found) {
        if ((seed >> 60) % 2 == 0) (i, found) = _pick(seed, often);
        if (!found) (i, found) = _pick(seed, otherwise);
    }

    function _fits(ChannelGhost storage g, Want want) internal view returns (bool) {
        IDebtChannels.Status s = g.status;
        if (s == IDebtChannels.Status.Closed) return false;
        bool open = s == IDebtChannels.Status.Open;
        bool accepting = open || currentTime < g.deadline;
        if (want == Want.Live) return true;
        if (want == Want.Open) return open;
        if (want == Want.Closing) return !open;
        if (want == Want.Accepting) return accepting;
        if (want == Want.Read) return accepting && g.hasReading;
        if (want == Want.Newer) return accepting && g.signedSeq > g.acceptedSeq;
        if (want == Want.Stale) return accepting && g.acceptedSeq > 0;
        if (want == Want.Withdrawal) return open && g.withdrawalAt != 0;
        if (want == Want.ClosingNewer) return !open && g.signedSeq > g.acceptedSeq;
        return open && currentTime < uint256(g.deal.firstInterval) * intervalSeconds;
    }

    /// A cell that owes, three times in four when there is one.
    function _cellMostlyIndebted(uint256 seed) internal view returns (uint8) {
        uint256 n = _cells.length;
        if ((seed >> 8) % 4 != 0) {
            for (uint256 k = 0; k < n; ++k) {
                uint256 c = (seed + k) % n;
                if (_cells[c].recorded > _cells[c].repaid) return uint8(c);
            }
        }
        return uint8(seed % n);
    }

    /// After every action on a channel: the seq it shows never goes down. (The invariants
    /// compare every channel's seq with the ghost after every call as well.)
    function _watchSeq(uint256 i) internal {
        _touched = 0;
        uint32 seq = channels.channelOf(_channels[i].id, _channels[i].deal.sellerMeter).seq;
        if (seq < _channels[i].seenSeq) _violate("a channel's seq went down");
        _channels[i].seenSeq = seq;
    }

    function _warp(uint256 to) internal {
        if (to <= currentTime) return;
        currentTime = to;
        vm.warp(to);
    }

    /// For an action due at `due`: once in four (by `seed`) while it is not yet due, tries it
    /// early (`early` must revert with `expected`) and returns false; otherwise warps to
    /// somewhat after `due` if needed and returns true.
    function _waitUntil(uint256 due, uint256 seed, bytes memory early, bytes4 expected, string memory what)
        internal
        returns (bool proceed)
    {
        if (currentTime >= due) return true;
        if ((seed >> 8) % 4 == 0) {
            _probe(STRANGER, address(channels), early, expected, what);
            return false;
        }
        _warp(due + (seed >> 16) % 600);
        return true;
    }

    /// Calls `data` on `target` as `caller` and requires it to revert with `expected`.
    /// @return refused Whether the call reverted with `expected`.
    function _probe(address caller, address target, bytes memory data, bytes4 expected, string memory what)
        internal
        returns (bool refused)
    {
        ++callsProbed;
        vm.prank(caller);
        (bool success, bytes memory err) = target.call(data);
        if (success) {
            _violate(string.concat(what, ": went through, expected a revert"));
        } else if (err.length < 4 || bytes4(err) != expected) {
            _violate(string.concat(what, ": reverted with the wrong error"));
        } else {
            refused = true;
        }
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
