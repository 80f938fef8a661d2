/**
 * The forecast of a cell's net energy per interval: its load and generation profiles (cycled
 * by interval index), and its battery run for self-consumption: surplus charges the battery up
 * to its capacity, deficit discharges it down to the owner's reserve; what is left is the
 * energy to sell or buy. The state of charge is an estimate the agent moves forward with what
 * it plans (`advance`); telemetry from the hub, when there is some, corrects it (`setSoc`).
 */
import type { AgentConfig } from '../config/index.js';

export interface IntervalForecast {
  interval: bigint;
  loadWh: bigint;
  generationWh: bigint;
  /** Charged (positive) or discharged (negative) in the plan. */
  batteryWh: bigint;
  /** To sell: generation beyond load and charging. */
  surplusWh: bigint;
  /** To buy: load beyond generation and discharging. */
  deficitWh: bigint;
  /** Load the owner allows to switch off. */
  flexibleWh: bigint;
}

/** A new expectation for one interval (a weather update, the owner's plan): replaces the profile's values. */
export interface ForecastRevision {
  loadWh?: bigint;
  generationWh?: bigint;
  flexibleLoadWh?: bigint;
}

export interface Forecast {
  at(interval: bigint): IntervalForecast;
  /**
   * Moves the state of charge by the plan of `interval` (once per interval). The interval's
   * plan is then computed from the state of charge it started with, so planning later
   * intervals does not change what an order already placed stands for.
   */
  advance(interval: bigint): void;
  /** Replaces the profile's values for `interval`; the battery estimate follows the new plan. */
  revise(interval: bigint, revision: ForecastRevision): void;
  setSoc(wh: bigint): void;
  soc(): bigint | undefined;
}

const cycle = (values: readonly bigint[], interval: bigint) =>
  values[Number(interval % BigInt(values.length))] ?? 0n;
const min = (...xs: bigint[]) => xs.reduce((a, b) => (b < a ? b : a));

/** Creates the forecast of one cell. */
export function createForecast(parameters: {
  profile: AgentConfig['profile'];
  battery?: AgentConfig['battery'];
}): Forecast {
  const { profile, battery } = parameters;
  let currentSoc = battery?.socWh;
  /** The state of charge each planned interval started with. */
  const advanced = new Map<bigint, bigint | undefined>();
  const revisions = new Map<bigint, ForecastRevision>();
  function at(interval: bigint): IntervalForecast {
    const revision = revisions.get(interval);
    const loadWh = revision?.loadWh ?? cycle(profile.loadWh, interval);
    const generationWh = revision?.generationWh ?? cycle(profile.generationWh, interval);
    const flexibleWh = min(revision?.flexibleLoadWh ?? cycle(profile.flexibleLoadWh, interval), loadWh);
    const soc = advanced.has(interval) ? advanced.get(interval) : currentSoc;
    let batteryWh = 0n;
    const raw = generationWh - loadWh;
    if (battery && soc !== undefined) {
      if (raw > 0n)
        batteryWh = min(raw, battery.maxChargeWh, battery.capacityWh > soc ? battery.capacityWh - soc : 0n);
      else if (raw < 0n)
        batteryWh = -min(
          -raw,
          battery.maxDischargeWh,
          soc > battery.reserveSocWh ? soc - battery.reserveSocWh : 0n,
        );
    }
    const net = raw - batteryWh;
    return {
      interval,
      loadWh,
      generationWh,
      batteryWh,
      surplusWh: net > 0n ? net : 0n,
      deficitWh: net < 0n ? -net : 0n,
      flexibleWh,
    };
  }
  return {
    at,
    advance(interval) {
      if (currentSoc === undefined || advanced.has(interval)) return;
      const battery = at(interval).batteryWh;
      advanced.set(interval, currentSoc);
      currentSoc += battery;
    },
    revise(interval, revision) {
      const before = at(interval).batteryWh;
      revisions.set(interval, { ...revisions.get(interval), ...revision });
      // A planned interval charges or discharges differently now: carry that forward.
      if (advanced.has(interval) && currentSoc !== undefined) currentSoc += at(interval).batteryWh - before;
    },
    setSoc(wh) {
      currentSoc = wh;
    },
    soc: () => currentSoc,
  };
}
