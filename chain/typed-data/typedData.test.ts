import { domainSeparator, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { clearingPoolAbi } from '../abi/contracts.generated.js';
import { useKit } from '../test/kit.js';
import { orderFor, readingFor, typeHash } from '../test/typedSamples.js';
import {
  hashMeterReading,
  hashOrder,
  meterReadingTypes,
  orderTypes,
  recoverMeterReadingSigner,
  signMeterReading,
} from './index.js';

const kit = useKit();
const pool = { address: kit.manifest.contracts.pool, abi: clearingPoolAbi } as const;

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
    expect(typeHash('Order', orderTypes.Order)).toBe(orderTypeHash);
    expect(typeHash('MeterReading', meterReadingTypes.MeterReading)).toBe(readingTypeHash);
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
