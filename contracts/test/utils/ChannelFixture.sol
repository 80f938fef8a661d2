// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DebtChannels} from "../../src/DebtChannels.sol";
import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {IDebtChannels} from "../../src/interfaces/IDebtChannels.sol";
import {CellType} from "../../src/types/CellTypes.sol";
import {PoolFixture} from "./PoolFixture.sol";

/// @notice The TE core plus the debt channels, deployed the way `gridcell devnet` does, and
/// the steps of a deal: terms, agents' signatures, meter readings of the deal's meter,
/// vouchers.
abstract contract ChannelFixture is PoolFixture {
    uint256 internal constant CHALLENGE_WINDOW = 4 hours;
    uint256 internal constant WITHDRAWAL_DELAY = 5 hours;
    /// 0.20 per kWh (6 decimals).
    uint96 internal constant PRICE = 200_000;
    uint64 internal constant MAX_WH = 2000;
    /// Four intervals of MAX_WH at PRICE: 1.6 tokens.
    uint96 internal constant COLLATERAL = 1_600_000;

    DebtChannels internal channels;

    struct DealKeys {
        IDebtChannels.Deal deal;
        CellKeys buyer;
        CellKeys seller;
        bytes32 id;
    }

    function setUp() public virtual override {
        super.setUp();
        channels = new DebtChannels(registry, wallets, INTERVAL, CHALLENGE_WINDOW, WITHDRAWAL_DELAY);
        wallets.addMarket(address(channels));
    }

    /// @notice Terms for four intervals from the next one, MAX_WH each at PRICE, COLLATERAL.
    function terms(CellKeys memory buyer, CellKeys memory seller) internal view returns (IDebtChannels.Deal memory d) {
        uint64 first = uint64(block.timestamp / INTERVAL + 1);
        d = IDebtChannels.Deal({
            buyerCell: buyer.id,
            sellerCell: seller.id,
            sellerMeter: seller.meter,
            pricePerKWh: PRICE,
            maxWhPerInterval: MAX_WH,
            firstInterval: first,
            lastInterval: first + 3,
            collateral: COLLATERAL,
            expiry: uint64(block.timestamp + 1 hours),
            salt: 1
        });
    }

    function signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice Both agents' signatures of the deal.
    function signDeal(DealKeys memory k) internal view returns (bytes memory b, bytes memory s) {
        bytes32 digest = channels.channelId(k.deal);
        b = signDigest(k.buyer.agentKey, digest);
        s = signDigest(k.seller.agentKey, digest);
    }

    /// @notice Opens `d` signed by both agents.
    function openDeal(DealKeys memory k) internal returns (bytes32 id) {
        bytes32 digest = channels.channelId(k.deal);
        id = channels.open(k.deal, signDigest(k.buyer.agentKey, digest), signDigest(k.seller.agentKey, digest));
        k.id = id;
    }

    /// @notice Terms for a new buyer's deal on `a`'s seller and meter, the four intervals
    /// right after `a`'s: the next deal the meter may back. Not opened.
    function nextDealOnMeter(DealKeys memory a) internal returns (DealKeys memory b) {
        b.seller = a.seller;
        b.buyer = newCell(CellType.PassiveConsumer);
        b.deal = terms(b.buyer, b.seller);
        b.deal.firstInterval = a.deal.lastInterval + 1;
        b.deal.lastInterval = a.deal.lastInterval + 4;
    }

    /// @notice Closes `k` at once on `finalAmount`, both agents signing.
    function closeTogether(DealKeys memory k, uint96 finalAmount) internal {
        bytes32 digest = channels.hashClose(k.id, finalAmount);
        channels.closeCooperative(
            k.deal, finalAmount, signDigest(k.buyer.agentKey, digest), signDigest(k.seller.agentKey, digest)
        );
    }

    /// @notice A prosumer selling to a passive consumer, both funded, on the standard terms;
    /// not opened.
    function standardDeal() internal returns (DealKeys memory k) {
        k.seller = newCell(CellType.Prosumer);
        k.buyer = newCell(CellType.PassiveConsumer);
        k.deal = terms(k.buyer, k.seller);
    }

    /// @notice {standardDeal}, opened.
    function openStandard() internal returns (DealKeys memory k) {
        k = standardDeal();
        openDeal(k);
    }

    /// @notice The deal meter's signed reading for `t`: `exportWh` during it and the export
    /// counter `exportCumWh` at its end.
    function meterReading(CellKeys memory k, uint64 t, uint64 exportWh, uint64 exportCumWh)
        internal
        view
        returns (IClearingPool.SignedReading memory)
    {
        IClearingPool.MeterReading memory m = IClearingPool.MeterReading({
            meter: k.meter,
            cell: k.id,
            interval: t,
            importWh: 0,
            exportWh: exportWh,
            importCumWh: 0,
            exportCumWh: exportCumWh,
            seq: t
        });
        return signReading(k.meterKey, m, channels.hashReading(m));
    }

    function voucher(DealKeys memory k, uint32 seq, uint64 cumulativeWh, uint96 cumulativeAmount)
        internal
        view
        returns (IDebtChannels.SignedVoucher memory sv)
    {
        sv.voucher = IDebtChannels.Voucher({
            channel: k.id, seq: seq, cumulativeWh: cumulativeWh, cumulativeAmount: cumulativeAmount
        });
        (sv.r, sv.vs) = vm.signCompact(k.buyer.agentKey, channels.hashVoucher(sv.voucher));
    }

    /// @notice The voucher an honest buyer signs after `cumulativeWh` delivered, at the deal price.
    function fairVoucher(DealKeys memory k, uint32 seq, uint64 cumulativeWh)
        internal
        view
        returns (IDebtChannels.SignedVoucher memory)
    {
        return voucher(k, seq, cumulativeWh, uint96((uint256(cumulativeWh) * k.deal.pricePerKWh) / 1000));
    }

    function one(IClearingPool.SignedReading memory a) internal pure returns (IClearingPool.SignedReading[] memory l) {
        l = new IClearingPool.SignedReading[](1);
        l[0] = a;
    }

    function warpToInterval(uint64 t) internal {
        vm.warp(uint256(t) * INTERVAL);
    }

    function state(DealKeys memory k) internal view returns (IDebtChannels.Channel memory) {
        return channels.channelOf(k.id, k.deal.sellerMeter);
    }
}
