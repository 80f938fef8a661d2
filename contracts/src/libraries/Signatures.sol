// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Signatures
/// @notice secp256k1 recovery straight from the ecrecover precompile, with the rules of
/// OpenZeppelin's `ECDSA.tryRecover`: a malleable signature (s in the upper half of the curve
/// order, EIP-2) and one that recovers no address both yield address(0), which never matches
/// a registered key. It skips the library's error plumbing, about 500 gas a signature on the
/// channels' and readings' hot paths.
library Signatures {
    /// @dev secp256k1n / 2 (EIP-2): s above it is the malleable twin of a valid signature.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The signer of `digest` from {r, s, v}; address(0) if none or malleable.
    function recover(bytes32 digest, bytes32 r, bytes32 s, uint256 v) internal view returns (address signer) {
        assembly ("memory-safe") {
            if iszero(gt(s, HALF_ORDER)) {
                // Inputs past the free-memory pointer (scratch: not kept), output in scratch
                // word 0, zeroed first: the precompile writes nothing when it recovers nothing
                // (v other than 27 or 28, r or s out of range).
                let m := mload(0x40)
                mstore(m, digest)
                mstore(add(m, 0x20), v)
                mstore(add(m, 0x40), r)
                mstore(add(m, 0x60), s)
                mstore(0x00, 0)
                pop(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20))
                signer := mload(0x00)
            }
        }
    }

    /// @notice The signer from an EIP-2098 compact signature {r, vs}; address(0) if none or
    /// malleable. vs carries v - 27 in its top bit and s below it.
    function recoverCompact(bytes32 digest, bytes32 r, bytes32 vs) internal view returns (address) {
        // The top bit is masked off, so s < 2^255; v is 27 or 28.
        bytes32 s = vs & bytes32(0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff);
        return recover(digest, r, s, (uint256(vs) >> 255) + 27);
    }
}
