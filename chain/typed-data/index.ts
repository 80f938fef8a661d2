/**
 * Every EIP-712 typed-data definition of gridcell, in one place. The contracts hash the same
 * types (ClearingPool.ORDER_TYPEHASH, METER_READING_TYPEHASH; DebtChannels.DEAL_TYPEHASH,
 * VOUCHER_TYPEHASH, CLOSE_TYPEHASH); chain/typed-data tests prove that each digest computed
 * here equals the contract's.
 */
import {
  type Address,
  compactSignatureToSignature,
  concat,
  type Hex,
  hashTypedData,
  isHex,
  type LocalAccount,
  parseCompactSignature,
  parseSignature,
  recoverTypedDataAddress,
  serializeSignature,
  signatureToCompactSignature,
  size,
} from 'viem';
import { BaseError } from '../errors/index.js';

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

/** The terms of a bilateral deal (debt channels); its digest is the channel id. */
export const dealTypes = {
  Deal: [
    { name: 'buyerCell', type: 'uint256' },
    { name: 'sellerCell', type: 'uint256' },
    { name: 'sellerMeter', type: 'address' },
    { name: 'pricePerKWh', type: 'uint96' },
    { name: 'maxWhPerInterval', type: 'uint64' },
    { name: 'firstInterval', type: 'uint64' },
    { name: 'lastInterval', type: 'uint64' },
    { name: 'collateral', type: 'uint96' },
    { name: 'expiry', type: 'uint64' },
    { name: 'salt', type: 'uint64' },
  ],
} as const;

/** What the buyer's agent owes in all on a channel so far. */
export const voucherTypes = {
  Voucher: [
    { name: 'channel', type: 'bytes32' },
    { name: 'seq', type: 'uint32' },
    { name: 'cumulativeWh', type: 'uint64' },
    { name: 'cumulativeAmount', type: 'uint96' },
  ],
} as const;

/** The final amount of a cooperative close, which both agents sign. */
export const closeChannelTypes = {
  CloseChannel: [
    { name: 'channel', type: 'bytes32' },
    { name: 'finalAmount', type: 'uint96' },
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

/**
 * A bilateral deal as the channels' `Deal` struct and both agents sign it: `maxWhPerInterval`
 * from the seller's to the buyer's cell in each interval of [firstInterval, lastInterval],
 * measured by the export counter of `sellerMeter`, at `pricePerKWh` (token base units per kWh).
 */
export interface Deal {
  buyerCell: bigint;
  sellerCell: bigint;
  sellerMeter: Address;
  pricePerKWh: bigint;
  maxWhPerInterval: bigint;
  firstInterval: bigint;
  lastInterval: bigint;
  /** Locked from the buyer's wallet when the channel opens, base units. */
  collateral: bigint;
  /** Unix time after which the signed deal may no longer be opened. */
  expiry: bigint;
  /** Tells apart two deals with the same terms. */
  salt: bigint;
}

/** A voucher as the channels' `Voucher` struct and the buyer's agent signs it. */
export interface Voucher {
  /** The channel id (the deal's digest). */
  channel: Hex;
  /** Strictly increasing; the first voucher has seq 1. uint32, hence a number. */
  seq: number;
  cumulativeWh: bigint;
  cumulativeAmount: bigint;
}

/** A cooperative close: the final amount owed on the channel, signed by both agents. */
export interface CloseChannel {
  channel: Hex;
  finalAmount: bigint;
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

/** The EIP-712 digest of a deal: its channel id. */
export function hashDeal(domain: GridcellDomain, deal: Deal): Hex {
  return hashTypedData({ domain, types: dealTypes, primaryType: 'Deal', message: deal });
}

/**
 * The channel id of a deal under the channels' domain: the deal's EIP-712 digest, which both
 * agents sign, so a deal opens once, on one chain, in one contract.
 * @example const id = channelId(clients.channelsDomain, deal);
 */
export function channelId(domain: GridcellDomain, deal: Deal): Hex {
  return hashDeal(domain, deal);
}

/** The EIP-712 digest of a voucher. */
export function hashVoucher(domain: GridcellDomain, voucher: Voucher): Hex {
  return hashTypedData({ domain, types: voucherTypes, primaryType: 'Voucher', message: voucher });
}

/** The EIP-712 digest of a cooperative close. */
export function hashCloseChannel(domain: GridcellDomain, close: CloseChannel): Hex {
  return hashTypedData({ domain, types: closeChannelTypes, primaryType: 'CloseChannel', message: close });
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

/**
 * Signs a deal with a cell's agent key (the buyer's and the seller's both sign the same deal).
 * @returns The deal and the compact signature; `toChannelSignature` makes the bytes `open` takes.
 */
export async function signDeal(
  account: LocalAccount,
  domain: GridcellDomain,
  deal: Deal,
): Promise<Signed<Deal>> {
  const signature = await account.signTypedData({
    domain,
    types: dealTypes,
    primaryType: 'Deal',
    message: deal,
  });
  return { message: deal, signature: compact(signature) };
}

/** Signs a voucher with the buyer's agent key. */
export async function signVoucher(
  account: LocalAccount,
  domain: GridcellDomain,
  voucher: Voucher,
): Promise<Signed<Voucher>> {
  const signature = await account.signTypedData({
    domain,
    types: voucherTypes,
    primaryType: 'Voucher',
    message: voucher,
  });
  return { message: voucher, signature: compact(signature) };
}

/** Signs the final amount of a cooperative close with a party's agent key. */
export async function signCloseChannel(
  account: LocalAccount,
  domain: GridcellDomain,
  close: CloseChannel,
): Promise<Signed<CloseChannel>> {
  const signature = await account.signTypedData({
    domain,
    types: closeChannelTypes,
    primaryType: 'CloseChannel',
    message: close,
  });
  return { message: close, signature: compact(signature) };
}

function full(signature: CompactSignature): Hex {
  return serializeSignature(compactSignatureToSignature({ r: signature.r, yParityAndS: signature.vs }));
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
    signature: full(signature),
  });
}

/** Recovers the key that signed a deal (the counterparty checks it is the other cell's agent). */
export function recoverDealSigner(
  domain: GridcellDomain,
  deal: Deal,
  signature: CompactSignature,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: dealTypes,
    primaryType: 'Deal',
    message: deal,
    signature: full(signature),
  });
}

/** Recovers the key that signed a voucher (the seller checks it is the buyer's agent). */
export function recoverVoucherSigner(
  domain: GridcellDomain,
  voucher: Voucher,
  signature: CompactSignature,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: voucherTypes,
    primaryType: 'Voucher',
    message: voucher,
    signature: full(signature),
  });
}

/** Recovers the key that signed a cooperative close. */
export function recoverCloseChannelSigner(
  domain: GridcellDomain,
  close: CloseChannel,
  signature: CompactSignature,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: closeChannelTypes,
    primaryType: 'CloseChannel',
    message: close,
    signature: full(signature),
  });
}

/** A signature the channels cannot take: neither 64 nor 65 bytes, or not a signature. */
export class InvalidSignatureError extends BaseError {
  override name = 'InvalidSignatureError' as const;
}

/**
 * The `bytes` signature the channels' `open` and `closeCooperative` take: 64 bytes, EIP-2098
 * compact {r, yParityAndS} (the contract also takes 65-byte {r, s, v}).
 */
export function toChannelSignature(signature: CompactSignature): Hex {
  return concat([signature.r, signature.vs]);
}

/**
 * Reads a channel signature back, in either form the contract takes: 64 bytes (EIP-2098) or
 * 65 bytes ({r, s, v}).
 * @throws InvalidSignatureError for any other length.
 */
export function parseChannelSignature(signature: Hex): CompactSignature {
  const length = isHex(signature, { strict: true }) ? size(signature) : -1;
  if (length === 64) {
    const { r, yParityAndS } = parseCompactSignature(signature);
    return { r, vs: yParityAndS };
  }
  if (length === 65) return compact(signature);
  throw new InvalidSignatureError(
    `expected a 64-byte (EIP-2098) or 65-byte signature, received ${length < 0 ? 'no hex' : `${length} bytes`}`,
  );
}

/** The struct shape `submitOrders` takes. */
export function toSignedOrderArg(signed: Signed<Order>) {
  return { order: signed.message, r: signed.signature.r, vs: signed.signature.vs };
}

/** The struct shape the channels' `redeem`, `closeWithVoucher` and `challenge` take. */
export function toSignedVoucherArg(signed: Signed<Voucher>) {
  return { voucher: signed.message, r: signed.signature.r, vs: signed.signature.vs };
}

/** The struct shape the pool's `settle` and the channels' redemptions take. */
export function toSignedReadingArg(signed: Signed<MeterReading>) {
  return { reading: signed.message, r: signed.signature.r, vs: signed.signature.vs };
}
