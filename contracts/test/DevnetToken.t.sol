// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {DevnetToken} from "../src/DevnetToken.sol";
import {Test} from "./utils/Test.sol";

contract DevnetTokenTest is Test {
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    DevnetToken private token;
    uint256 private ownerKey = 0x0D0E;
    address private owner;
    address private spender = address(0x5BE1);

    function setUp() public {
        vm.warp(1_800_000_000);
        token = new DevnetToken();
        owner = vm.addr(ownerKey);
    }

    function test_decimals_returnsSix() public view {
        assertEq(token.decimals(), 6, "decimals");
    }

    function test_faucetLimit_isOneHundredThousandTokens() public view {
        assertEq(token.FAUCET_LIMIT(), 100_000 * 10 ** 6, "100,000 tokens of 6 decimals");
    }

    function test_faucet_mintsExactlyTheLimit() public {
        token.faucet(owner, 100_000e6);
        assertEq(token.balanceOf(owner), 100_000e6, "balance");
        assertEq(token.totalSupply(), 100_000e6, "supply");
    }

    function test_faucet_revertsWithFaucetLimitExceededWhenOverLimit() public {
        vm.expectRevert(abi.encodeWithSelector(DevnetToken.FaucetLimitExceeded.selector, 100_000e6 + 1, 100_000e6));
        token.faucet(owner, 100_000e6 + 1);
    }

    /// The limit bounds one call, not an account: the devnet faucet is open by design.
    function test_faucet_limitAppliesPerCall() public {
        token.faucet(owner, 100_000e6);
        vm.prank(address(0xBEEF));
        token.faucet(owner, 100_000e6);
        assertEq(token.balanceOf(owner), 200_000e6, "two full faucet calls");
    }

    function testFuzz_faucet_mintsAnyAmountUpToLimit(address to, uint256 amount) public {
        vm.assume(to != address(0));
        amount = bound(amount, 0, token.FAUCET_LIMIT());
        token.faucet(to, amount);
        assertEq(token.balanceOf(to), amount, "balance");
        assertEq(token.totalSupply(), amount, "supply");
    }

    function testFuzz_faucet_revertsAboveLimit(uint256 amount) public {
        amount = bound(amount, token.FAUCET_LIMIT() + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(DevnetToken.FaucetLimitExceeded.selector, amount, 100_000e6));
        token.faucet(owner, amount);
    }

    function test_DOMAIN_SEPARATOR_matchesEip712Domain() public view {
        bytes32 expected = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("gridcell devnet euro"), keccak256("1"), block.chainid, address(token)
            )
        );
        assertEq(token.DOMAIN_SEPARATOR(), expected, "domain separator");
    }

    function test_permit_setsAllowanceAndUsesNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, _digest(owner, spender, 5e6, 0, deadline));
        token.permit(owner, spender, 5e6, deadline, v, r, s);
        assertEq(token.allowance(owner, spender), 5e6, "allowance");
        assertEq(token.nonces(owner), 1, "nonce used");

        token.faucet(owner, 5e6);
        vm.prank(spender);
        token.transferFrom(owner, spender, 5e6);
        assertEq(token.balanceOf(spender), 5e6, "spender pulled the permitted amount");
    }

    function test_permit_acceptsSignatureAtDeadline() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, _digest(owner, spender, 1, 0, deadline));
        token.permit(owner, spender, 1, deadline, v, r, s);
        assertEq(token.allowance(owner, spender), 1, "allowance");
    }

    function test_permit_revertsWithExpiredSignatureWhenPastDeadline() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, _digest(owner, spender, 1, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(owner, spender, 1, deadline, v, r, s);
    }

    function test_permit_revertsWithInvalidSignerWhenReplayed() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, _digest(owner, spender, 5e6, 0, deadline));
        token.permit(owner, spender, 5e6, deadline, v, r, s);
        // The replay is checked against nonce 1, so the same signature recovers someone else.
        address recovered = ecrecover(_digest(owner, spender, 5e6, 1, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, owner));
        token.permit(owner, spender, 5e6, deadline, v, r, s);
    }

    function test_permit_revertsWithInvalidSignerWhenSignedByAnotherKey() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xBAD, _digest(owner, spender, 5e6, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, vm.addr(0xBAD), owner));
        token.permit(owner, spender, 5e6, deadline, v, r, s);
    }

    function _digest(address owner_, address spender_, uint256 value, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender_, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }
}
