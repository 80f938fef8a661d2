// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ICellRegistry} from "../interfaces/ICellRegistry.sol";
import {IClearingPool} from "../interfaces/IClearingPool.sol";
import {Signatures} from "./Signatures.sol";

/// @title Meter readings
/// @notice The one place a signed meter reading is hashed and checked: the clearing pool's
/// settlement and the debt channels' vouchers and disputes use the same code, so a reading
/// means the same thing in both (ARCHITECTURE.md, "Bilateral deals").
library MeterReadings {
    /// @notice EIP-712 type of `IClearingPool.MeterReading`.
    bytes32 internal constant TYPEHASH = keccak256(
        "MeterReading(address meter,uint256 cell,uint64 interval,uint64 importWh,uint64 exportWh,uint64 importCumWh,uint64 exportCumWh,uint64 seq)"
    );

    /// @notice Why a reading was refused, or `Valid`.
    enum Check {
        Valid,
        BadSignature,
        MeterNotInCell
    }

    /// @notice EIP-712 struct hash of a reading, from calldata: every field is one 32-byte
    /// word. A field with dirty high bits hashes to a digest no meter signed.
    function structHash(IClearingPool.MeterReading calldata r) internal pure returns (bytes32 h) {
        bytes32 typeHash = TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            calldatacopy(add(m, 0x20), r, 0x100)
            h := keccak256(m, 0x120)
        }
    }

    /// @notice Checks that the reading's own meter signed it, under `domainSeparator`, and that
    /// the meter key serves the reading's cell now: a removed meter key maps to no cell, so
    /// its readings stop counting at once.
    function check(IClearingPool.SignedReading calldata signed, bytes32 domainSeparator, ICellRegistry registry)
        internal
        view
        returns (Check)
    {
        IClearingPool.MeterReading calldata r = signed.reading;
        bytes32 digest = MessageHashUtils.toTypedDataHash(domainSeparator, structHash(r));
        address signer = Signatures.recoverCompact(digest, signed.r, signed.vs);
        // address(0) is what a bad signature recovers: it is nobody's meter.
        if (signer == address(0) || signer != r.meter) return Check.BadSignature;
        if (registry.cellOfMeter(r.meter) != r.cell) return Check.MeterNotInCell;
        return Check.Valid;
    }
}
