import { domainSeparator, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { clearingPoolAbi } from '../abi/contracts.generated.js';
import { useKit } from '../test/kit.js';
import {
  hashMeterReading,
  hashOrder,
  type MeterReading,
  meterReadingTypes,
  type Order,
  orderTypes,
  recoverMeterReadingSigner,
  signMeterReading,
} from './index.js';

const kit = useKit();
const pool = { address: kit.manifest.contracts.pool, abi: clearingPoolAbi } as const;

/** Deterministic pseudo-random values over each field's full range. */
function field(seed: number, bits: number): bigint {
  const h = BigInt(keccak256(toHex(`${seed}:${bits}`)));
  return h & ((1n << BigInt(bits)) - 1n);
}

function orderFor(seed: number): Order {
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

function readingFor(seed: number): MeterReading {
  return {
    meter: privateKeyToAccount(toHex(field(seed, 255) + 1n, { size: 32 })).address,
    cell: field(seed + 1, 256),
    interval: field(seed + 2, 64),
    importWh: field(seed + 3, 64),
    exportWh: field(seed + 4, 64),
    importCumWh: field(seed + 5, 64),
    exportCumWh: field(seed + 6, 64),
    seq: field(seed + 7, 64),
  };
}

describe('EIP-712 typed data', () => {
  it('the domain separator computed in TypeScript equals the pool contract', async () => {
    const onChain = await kit.publicClient.readContract({ ...pool, functionName: 'domainSeparator' });
    expect(domainSeparator({ domain: kit.poolDomain })).toBe(onChain);
  });

  it('every Order digest computed in TypeScript equals the contract', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const order = orderFor(seed * 10);
      const onChain = await kit.publicClient.readContract({
        ...pool,
        functionName: 'hashOrder',
        args: [order],
      });
      expect(hashOrder(kit.poolDomain, order), `seed ${seed}`).toBe(onChain);
    }
  });

  it('every MeterReading digest computed in TypeScript equals the contract', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const reading = readingFor(seed * 10);
      const onChain = await kit.publicClient.readContract({
        ...pool,
        functionName: 'hashReading',
        args: [reading],
      });
      expect(hashMeterReading(kit.poolDomain, reading), `seed ${seed}`).toBe(onChain);
    }
  });

  it('the type strings are the ones the contract hashes', async () => {
    const orderTypeHash = await kit.publicClient.readContract({ ...pool, functionName: 'ORDER_TYPEHASH' });
    const readingTypeHash = await kit.publicClient.readContract({
      ...pool,
      functionName: 'METER_READING_TYPEHASH',
    });
    const encode = (name: string, fields: readonly { name: string; type: string }[]) =>
      keccak256(toHex(`${name}(${fields.map((f) => `${f.type} ${f.name}`).join(',')})`));
    expect(encode('Order', orderTypes.Order)).toBe(orderTypeHash);
    expect(encode('MeterReading', meterReadingTypes.MeterReading)).toBe(readingTypeHash);
  });

  it('a signed meter reading recovers to the meter key, and not after a field changes', async () => {
    const meter = privateKeyToAccount(toHex(7n, { size: 32 }));
    const reading = { ...readingFor(3), meter: meter.address };
    const signed = await signMeterReading(meter, kit.poolDomain, reading);
    expect(await recoverMeterReadingSigner(kit.poolDomain, reading, signed.signature)).toBe(meter.address);
    const altered = { ...reading, exportWh: reading.exportWh + 1n };
    expect(await recoverMeterReadingSigner(kit.poolDomain, altered, signed.signature)).not.toBe(
      meter.address,
    );
  });

  it('error: a digest for another chain id differs from the contract', async () => {
    const order = orderFor(1);
    const onChain = await kit.publicClient.readContract({
      ...pool,
      functionName: 'hashOrder',
      args: [order],
    });
    expect(hashOrder({ ...kit.poolDomain, chainId: kit.manifest.chainId + 1 }, order)).not.toBe(onChain);
  });
});
