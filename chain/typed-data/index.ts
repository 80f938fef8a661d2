/**
 * Every EIP-712 typed-data definition of gridcell, in one place. The contracts hash the same
 * types (ClearingPool.ORDER_TYPEHASH, METER_READING_TYPEHASH); chain/typed-data tests prove
 * that each digest computed here equals the contract's.
 */
import {
  type Address,
  compactSignatureToSignature,
  type Hex,
  hashTypedData,
  type LocalAccount,
  parseSignature,
  recoverTypedDataAddress,
  serializeSignature,
  signatureToCompactSignature,
} from 'viem';

/** The domain of every gridcell signature: {name: "gridcell", version: "1", chainId, contract}. */
export function gridcellDomain(chainId: number, verifyingContract: Address) {
  return { name: 'gridcell', version: '1', chainId, verifyingContract } as const;
}
export type GridcellDomain = ReturnType<typeof gridcellDomain>;

export const orderTypes = {
  Order: [
    { name: 'cell', type: 'uint256' },
    { name: 'interval', type: 'uint64' },
    { name: 'side', type: 'uint8' },
    { name: 'energyWh', type: 'uint64' },
    { name: 'limitPrice', type: 'uint96' },
    { name: 'nonce', type: 'uint32' },
    { name: 'expiry', type: 'uint64' },
  ],
} as const;

export const meterReadingTypes = {
  MeterReading: [
    { name: 'meter', type: 'address' },
    { name: 'cell', type: 'uint256' },
    { name: 'interval', type: 'uint64' },
    { name: 'importWh', type: 'uint64' },
    { name: 'exportWh', type: 'uint64' },
    { name: 'importCumWh', type: 'uint64' },
    { name: 'exportCumWh', type: 'uint64' },
    { name: 'seq', type: 'uint64' },
  ],
} as const;

/** ERC-2612 `Permit`: lets the wallets pull a deposit in the same call (the token's domain). */
export const permitTypes = {
  Permit: [
    { name: 'owner', type: 'address' },
    { name: 'spender', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

export interface Permit {
  owner: Address;
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** A token's own EIP-712 domain (ERC-2612 permits are signed under it, not under gridcell's). */
export interface TokenDomain {
  name: string;
  version: string;
  chainId: number | bigint;
  verifyingContract: Address;
}

/**
 * Signs an ERC-2612 permit.
 * @returns v, r, s as `depositWithPermit` takes them.
 */
export async function signPermit(
  account: LocalAccount,
  domain: TokenDomain,
  permit: Permit,
): Promise<{ v: number; r: Hex; s: Hex }> {
  const signature = await account.signTypedData({
    domain,
    types: permitTypes,
    primaryType: 'Permit',
    message: permit,
  });
  const { r, s, v, yParity } = parseSignature(signature);
  return { v: v !== undefined ? Number(v) : yParity + 27, r, s };
}

/** An order as the pool's `Order` struct and the agent signs it. */
export interface Order {
  cell: bigint;
  interval: bigint;
  side: number;
  energyWh: bigint;
  limitPrice: bigint;
  nonce: number;
  expiry: bigint;
}

/** An interval reading as the pool's `MeterReading` struct and the meter key signs it. */
export interface MeterReading {
  meter: Address;
  cell: bigint;
  interval: bigint;
  importWh: bigint;
  exportWh: bigint;
  importCumWh: bigint;
  exportCumWh: bigint;
  seq: bigint;
}

/** A signature in the EIP-2098 compact form the contracts take (r, yParityAndS). */
export interface CompactSignature {
  r: Hex;
  vs: Hex;
}

export interface Signed<T> {
  message: T;
  signature: CompactSignature;
}

/** The EIP-712 digest of an order. */
export function hashOrder(domain: GridcellDomain, order: Order): Hex {
  return hashTypedData({ domain, types: orderTypes, primaryType: 'Order', message: order });
}

/** The EIP-712 digest of a meter reading. */
export function hashMeterReading(domain: GridcellDomain, reading: MeterReading): Hex {
  return hashTypedData({ domain, types: meterReadingTypes, primaryType: 'MeterReading', message: reading });
}

function compact(signature: Hex): CompactSignature {
  const { r, yParityAndS } = signatureToCompactSignature(parseSignature(signature));
  return { r, vs: yParityAndS };
}

/**
 * Signs an order with the cell's agent key.
 * @returns The order and its compact signature, ready for `submitOrders`.
 */
export async function signOrder(
  account: LocalAccount,
  domain: GridcellDomain,
  order: Order,
): Promise<Signed<Order>> {
  const signature = await account.signTypedData({
    domain,
    types: orderTypes,
    primaryType: 'Order',
    message: order,
  });
  return { message: order, signature: compact(signature) };
}

/** Signs an interval reading with a meter key. */
export async function signMeterReading(
  account: LocalAccount,
  domain: GridcellDomain,
  reading: MeterReading,
): Promise<Signed<MeterReading>> {
  const signature = await account.signTypedData({
    domain,
    types: meterReadingTypes,
    primaryType: 'MeterReading',
    message: reading,
  });
  return { message: reading, signature: compact(signature) };
}

/** Recovers the key that signed a meter reading (the oracle and relayer check this). */
export function recoverMeterReadingSigner(
  domain: GridcellDomain,
  reading: MeterReading,
  signature: CompactSignature,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: meterReadingTypes,
    primaryType: 'MeterReading',
    message: reading,
    signature: serializeSignature(compactSignatureToSignature({ r: signature.r, yParityAndS: signature.vs })),
  });
}

/** The struct shape `submitOrders` takes. */
export function toSignedOrderArg(signed: Signed<Order>) {
  return { order: signed.message, r: signed.signature.r, vs: signed.signature.vs };
}

/** The struct shape `settle` takes. */
export function toSignedReadingArg(signed: Signed<MeterReading>) {
  return { reading: signed.message, r: signed.signature.r, vs: signed.signature.vs };
}
