import { describe, expect, it } from 'vitest';
import { ACC32_MODULUS, advanceCounter, initialCounter, maxEnergyWh } from './meterCounter.js';

const limits = { maxImportW: 3600n, maxExportW: 7200n }; // 1 Wh/s import, 2 Wh/s export

describe('meter counters: 32-bit raw values to monotone cumulative Wh', () => {
  it('adds what the raw counters gained', () => {
    const s0 = initialCounter(100n, 10n, 20n);
    const r = advanceCounter(s0, 160n, 50n, 100n, limits);
    expect(r).toMatchObject({
      ok: true,
      events: [],
      state: { importCumWh: 50n, exportCumWh: 100n, at: 160n },
    });
  });

  it('reads a decrease that fits the limit as a wrap at 2^32, not as negative energy', () => {
    const s0 = initialCounter(0n, ACC32_MODULUS - 10n, 0n);
    const r = advanceCounter(s0, 60n, 5n, 0n, limits);
    expect(r).toMatchObject({ ok: true, events: [{ kind: 'wrap', counter: 'import' }] });
    if (r.ok) expect(r.state.importCumWh).toBe(ACC32_MODULUS + 5n);
  });

  it('reads a drop to a small value as a meter reset and counts only what came after it', () => {
    const s0 = initialCounter(0n, 1_000_000n, 0n);
    const r = advanceCounter(s0, 60n, 30n, 0n, limits);
    expect(r).toMatchObject({ ok: true, events: [{ kind: 'reset', counter: 'import' }] });
    if (r.ok) expect(r.state.importCumWh).toBe(1_000_030n);
  });

  it('error: refuses more energy than the connection limit allows in the time', () => {
    const s0 = initialCounter(0n, 0n, 0n);
    expect(maxEnergyWh(3600n, 60n)).toBe(61n); // 60 Wh + 1 Wh slack
    expect(advanceCounter(s0, 60n, 61n, 0n, limits).ok).toBe(true);
    const r = advanceCounter(s0, 60n, 62n, 0n, limits);
    expect(r).toEqual({
      ok: false,
      reason:
        'import counter rose by 62 Wh, more than the connection limit allows in the time (at most 61 Wh)',
    });
  });

  it('error: refuses counters going backwards without a wrap or a reset that fits', () => {
    const s0 = initialCounter(0n, 5000n, 0n);
    const r = advanceCounter(s0, 60n, 4000n, 0n, limits);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/went back from 5000 to 4000 Wh/);
  });

  it('error: refuses a sample older than the last one', () => {
    const r = advanceCounter(initialCounter(100n, 0n, 0n), 99n, 0n, 0n, limits);
    expect(r).toEqual({ ok: false, reason: "sample time 99 is before the last sample's 100" });
  });

  it('keeps the cumulative sum of every increment through any number of wraps (random walk)', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let state = initialCounter(0n, ACC32_MODULUS - 5_000n, ACC32_MODULUS - 3n);
    let trueImport = state.importCumWh;
    let trueExport = state.exportCumWh;
    let raw = { imp: state.rawImportWh, exp: state.rawExportWh };
    for (let i = 1; i <= 2000; i++) {
      const dt = BigInt(1 + Math.floor(random() * 30));
      const di = BigInt(Math.floor(random() * Number(dt)));
      const de = BigInt(Math.floor(random() * Number(dt) * 2));
      raw = { imp: (raw.imp + di) % ACC32_MODULUS, exp: (raw.exp + de) % ACC32_MODULUS };
      trueImport += di;
      trueExport += de;
      const r = advanceCounter(state, state.at + dt, raw.imp, raw.exp, { ...limits, slackWh: 0n });
      if (!r.ok) throw new Error(r.reason);
      state = r.state;
    }
    expect(state.importCumWh).toBe(trueImport);
    expect(state.exportCumWh).toBe(trueExport);
    expect(state.importCumWh).toBeGreaterThan(ACC32_MODULUS); // it did wrap
  });
});
