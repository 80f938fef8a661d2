/**
 * Turns a meter's raw 32-bit accumulators into monotone 64-bit cumulative counters, and
 * refuses what cannot be physical.
 *
 * SunSpec acc32 points wrap at 2^32 and a meter may be reset to zero (FIELD.md). A decrease
 * is a wrap when the wrapped difference is energy the connection could carry in the elapsed
 * time; it is a reset when the new raw value alone is plausible (the meter restarted from 0);
 * otherwise the sample is implausible and is dropped, with the reason. Either way the
 * cumulative counter never goes backwards, so readings stay idempotent and loss tolerant.
 */

export const ACC32_MODULUS = 1n << 32n;

/** What the counter has seen: raw values as read and the cumulative totals they map to. */
export interface CounterState {
  /** Unix seconds of the last accepted sample. */
  at: bigint;
  rawImportWh: bigint;
  rawExportWh: bigint;
  importCumWh: bigint;
  exportCumWh: bigint;
}

export interface CounterLimits {
  /** The connection's import limit, W (grid → cell). */
  maxImportW: bigint;
  /** The connection's export limit, W (cell → grid). */
  maxExportW: bigint;
  /** Slack on top of the limit: meter clocks and sampling are not exact. Wh, default 1. */
  slackWh?: bigint;
  /** Modulus of the raw counters (2^32 for acc32; 2^64 for a source that never wraps). */
  modulus?: bigint;
}

export type CounterEvent =
  | { kind: 'normal' }
  | { kind: 'wrap'; counter: 'import' | 'export' }
  | { kind: 'reset'; counter: 'import' | 'export' };

export type AdvanceResult =
  | { ok: true; state: CounterState; events: CounterEvent[] }
  | { ok: false; reason: string };

/** The most energy a connection limit allows in `seconds`, Wh, rounded up. */
export function maxEnergyWh(limitW: bigint, seconds: bigint, slackWh = 1n): bigint {
  return (limitW * seconds + 3599n) / 3600n + slackWh;
}

/** The first state of a counter, from its first sample. */
export function initialCounter(at: bigint, rawImportWh: bigint, rawExportWh: bigint): CounterState {
  return { at, rawImportWh, rawExportWh, importCumWh: rawImportWh, exportCumWh: rawExportWh };
}

function step(
  name: 'import' | 'export',
  previousRaw: bigint,
  raw: bigint,
  allowedWh: bigint,
  modulus: bigint,
): { ok: true; deltaWh: bigint; event?: CounterEvent } | { ok: false; reason: string } {
  if (raw < 0n || raw >= modulus) {
    return { ok: false, reason: `${name} counter ${raw} Wh is outside 0..${modulus - 1n}` };
  }
  if (raw >= previousRaw) {
    const delta = raw - previousRaw;
    if (delta > allowedWh) {
      return {
        ok: false,
        reason: `${name} counter rose by ${delta} Wh, more than the connection limit allows in the time (at most ${allowedWh} Wh)`,
      };
    }
    return { ok: true, deltaWh: delta };
  }
  const wrapped = raw + modulus - previousRaw;
  if (wrapped <= allowedWh) return { ok: true, deltaWh: wrapped, event: { kind: 'wrap', counter: name } };
  if (raw <= allowedWh) return { ok: true, deltaWh: raw, event: { kind: 'reset', counter: name } };
  return {
    ok: false,
    reason: `${name} counter went back from ${previousRaw} to ${raw} Wh: neither a wrap at 2^32 nor a reset to zero fits the connection limit`,
  };
}

/**
 * Accepts a new raw sample, or says why it cannot be real.
 * @param state The counter so far.
 * @param at Unix seconds of the sample; a sample older than the state is refused.
 */
export function advanceCounter(
  state: CounterState,
  at: bigint,
  rawImportWh: bigint,
  rawExportWh: bigint,
  limits: CounterLimits,
): AdvanceResult {
  if (at < state.at)
    return { ok: false, reason: `sample time ${at} is before the last sample's ${state.at}` };
  const modulus = limits.modulus ?? ACC32_MODULUS;
  const seconds = at - state.at;
  const imp = step(
    'import',
    state.rawImportWh,
    rawImportWh,
    maxEnergyWh(limits.maxImportW, seconds, limits.slackWh),
    modulus,
  );
  if (!imp.ok) return imp;
  const exp = step(
    'export',
    state.rawExportWh,
    rawExportWh,
    maxEnergyWh(limits.maxExportW, seconds, limits.slackWh),
    modulus,
  );
  if (!exp.ok) return exp;
  const events: CounterEvent[] = [];
  if (imp.event) events.push(imp.event);
  if (exp.event) events.push(exp.event);
  return {
    ok: true,
    events,
    state: {
      at,
      rawImportWh,
      rawExportWh,
      importCumWh: state.importCumWh + imp.deltaWh,
      exportCumWh: state.exportCumWh + exp.deltaWh,
    },
  };
}
