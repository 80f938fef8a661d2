import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Deal, MeterReading, Order, Voucher } from '../typed-data/index.js';

/**
 * Deterministic samples of every EIP-712 type, with each field drawn over its whole range,
 * for the tests that compare TypeScript digests with the contracts'.
 */

/** A pseudo-random value of `bits` bits, fixed by `seed`. */
export function field(seed: number, bits: number): bigint {
  const h = BigInt(keccak256(toHex(`${seed}:${bits}`)));
  return h & ((1n << BigInt(bits)) - 1n);
}

export function addressFor(seed: number) {
  return privateKeyToAccount(toHex(field(seed, 255) + 1n, { size: 32 })).address;
}

/** keccak256 of an EIP-712 type string, `Name(type name,...)`, as a contract's TYPEHASH. */
export function typeHash(name: string, fields: readonly { name: string; type: string }[]) {
  return keccak256(toHex(`${name}(${fields.map((f) => `${f.type} ${f.name}`).join(',')})`));
}

export function orderFor(seed: number): Order {
  return {
    cell: field(seed, 256),
    interval: field(seed + 1, 64),
    side: Number(field(seed + 2, 1)),
    energyWh: field(seed + 3, 64),
    limitPrice: field(seed + 4, 96),
    nonce: Number(field(seed + 5, 32)),
    expiry: field(seed + 6, 64),
  };
}

export function readingFor(seed: number): MeterReading {
  return {
    meter: addressFor(seed),
    cell: field(seed + 1, 256),
    interval: field(seed + 2, 64),
    importWh: field(seed + 3, 64),
    exportWh: field(seed + 4, 64),
    importCumWh: field(seed + 5, 64),
    exportCumWh: field(seed + 6, 64),
    seq: field(seed + 7, 64),
  };
}

export function dealFor(seed: number): Deal {
  return {
    buyerCell: field(seed, 256),
    sellerCell: field(seed + 1, 256),
    sellerMeter: addressFor(seed + 2),
    pricePerKWh: field(seed + 3, 96),
    maxWhPerInterval: field(seed + 4, 64),
    firstInterval: field(seed + 5, 64),
    lastInterval: field(seed + 6, 64),
    collateral: field(seed + 7, 96),
    expiry: field(seed + 8, 64),
    salt: field(seed + 9, 64),
  };
}

export function voucherFor(seed: number): Voucher {
  return {
    channel: toHex(field(seed, 256), { size: 32 }),
    seq: Number(field(seed + 1, 32)),
    cumulativeWh: field(seed + 2, 64),
    cumulativeAmount: field(seed + 3, 96),
  };
}
