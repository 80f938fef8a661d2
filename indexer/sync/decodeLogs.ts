import {
  type Abi,
  type AbiEvent,
  type Address,
  decodeEventLog,
  getAddress,
  type Hex,
  toEventSelector,
} from 'viem';
import {
  cellRegistryAbi,
  cellWalletsAbi,
  clearingPoolAbi,
  debtChannelsAbi,
} from '../../chain/abi/contracts.generated.js';
import type { Manifest } from '../../chain/manifest/index.js';

/** The contracts the indexer reads, by the name stored with each event. */
export type ContractName = 'registry' | 'wallets' | 'pool' | 'channels';

/** A log as eth_getLogs returns it (hex quantities). */
export interface RpcLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: Hex;
  removed?: boolean;
}

/** A decoded gridcell event with where it happened. */
export interface DecodedEvent {
  blockNumber: number;
  blockHash: Hex;
  logIndex: number;
  txHash: Hex;
  contract: ContractName;
  address: Address;
  eventName: string;
  args: Record<string, unknown>;
}

interface Watched {
  contract: ContractName;
  events: Map<Hex, AbiEvent>;
  /** Word-slicing decoders for events whose parameters are all static (every gridcell event). */
  fast: Map<Hex, FastDecoder>;
}

type FastDecoder = (topics: readonly Hex[], data: Hex) => Record<string, unknown> | undefined;

const checksummed = new Map<string, Address>();
function checksumAddress(word: string): Address {
  const raw = `0x${word.slice(24)}`;
  let a = checksummed.get(raw);
  if (!a) {
    a = getAddress(raw);
    checksummed.set(raw, a);
  }
  return a;
}

/**
 * A decoder of one 32-byte word (64 hex digits) for a static ABI type, with viem's result
 * types: integers of at most 48 bits as numbers, wider ones as bigints, addresses checksummed.
 * Undefined for types this fast path does not cover (dynamic ones).
 */
function wordDecoder(type: string): ((word: string) => unknown) | undefined {
  const int = /^(u?)int(\d*)$/.exec(type);
  if (int) {
    const bits = Number(int[2] || 256);
    const signed = int[1] !== 'u';
    return (word) => {
      let v = BigInt(`0x${word}`);
      if (signed && v >= 1n << 255n) v -= 1n << 256n;
      return bits <= 48 ? Number(v) : v;
    };
  }
  if (type === 'address') return checksumAddress;
  if (type === 'bool') return (word) => word !== '0'.repeat(64);
  const bytes = /^bytes(\d+)$/.exec(type);
  if (bytes) return (word) => `0x${word.slice(0, Number(bytes[1]) * 2)}`;
  return undefined;
}

function fastDecoder(event: AbiEvent): FastDecoder | undefined {
  const parts = event.inputs.map((input) => ({
    name: input.name ?? '',
    indexed: input.indexed === true,
    decode: wordDecoder(input.type),
  }));
  if (parts.some((p) => !p.decode || !p.name)) return undefined;
  const dataWords = parts.filter((p) => !p.indexed).length;
  const topicCount = parts.filter((p) => p.indexed).length + 1;
  return (topics, data) => {
    if (topics.length !== topicCount || data.length !== 2 + dataWords * 64) return undefined;
    const args: Record<string, unknown> = {};
    let topic = 1;
    let offset = 2;
    for (const p of parts) {
      const decode = p.decode as (word: string) => unknown;
      if (p.indexed) {
        args[p.name] = decode((topics[topic++] as Hex).slice(2));
      } else {
        args[p.name] = decode(data.slice(offset, offset + 64));
        offset += 64;
      }
    }
    return args;
  };
}

/** Address (lower case) → the contract's name and its events by topic 0, from the generated ABIs. */
export function watchedContracts(manifest: Manifest): Map<string, Watched> {
  const byName: Record<ContractName, { address: Address; abi: Abi }> = {
    registry: { address: manifest.contracts.registry, abi: cellRegistryAbi },
    wallets: { address: manifest.contracts.wallets, abi: cellWalletsAbi },
    pool: { address: manifest.contracts.pool, abi: clearingPoolAbi },
    channels: { address: manifest.contracts.channels, abi: debtChannelsAbi },
  };
  const out = new Map<string, Watched>();
  for (const [contract, { address, abi }] of Object.entries(byName) as [
    ContractName,
    { address: Address; abi: Abi },
  ][]) {
    const events = new Map<Hex, AbiEvent>();
    const fast = new Map<Hex, FastDecoder>();
    for (const item of abi) {
      if (item.type !== 'event') continue;
      const selector = toEventSelector(item);
      events.set(selector, item);
      const decoder = fastDecoder(item);
      if (decoder) fast.set(selector, decoder);
    }
    out.set(address.toLowerCase(), { contract, events, fast });
  }
  return out;
}

/** JSON of decoded arguments: bigints as decimal strings. */
export function argsJson(args: Record<string, unknown>): string {
  return JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * Decodes raw logs of the watched contracts; a log whose topic matches no event of its
 * contract is returned in `unknown` (an ABI that no longer matches the deployment).
 */
export function decodeLogs(
  logs: readonly RpcLog[],
  watched: Map<string, Watched>,
): { events: DecodedEvent[]; unknown: RpcLog[] } {
  const events: DecodedEvent[] = [];
  const unknown: RpcLog[] = [];
  for (const log of logs) {
    const w = watched.get(log.address.toLowerCase());
    const topic = log.topics[0];
    const item = w && topic ? w.events.get(topic) : undefined;
    if (!w || !item) {
      unknown.push(log);
      continue;
    }
    const fast = w.fast.get(topic as Hex)?.(log.topics, log.data);
    const decoded = fast
      ? { eventName: item.name, args: fast }
      : decodeEventLog({ abi: [item], data: log.data, topics: log.topics as [Hex, ...Hex[]], strict: true });
    events.push({
      blockNumber: Number(BigInt(log.blockNumber)),
      blockHash: log.blockHash,
      logIndex: Number(BigInt(log.logIndex)),
      txHash: log.transactionHash,
      contract: w.contract,
      address: log.address,
      eventName: decoded.eventName,
      args: decoded.args as unknown as Record<string, unknown>,
    });
  }
  return { events, unknown };
}
