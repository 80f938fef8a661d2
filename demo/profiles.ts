/**
 * What each agent forecasts for its cell: the plant's own PV and load profiles (the same seed,
 * so the agent knows its equipment) averaged over each interval of the day, plus the charging
 * plan its owner chose for the hub. Agents cycle profiles by interval index, so a day of
 * 86,400 / L entries lines up with the plant's time of day.
 */
import { keyOf, loadPower, pvPower } from '../grid/plant/profiles.js';
import type { TopologyCell } from '../grid/topology/index.js';

export interface CellProfile {
  loadWh: bigint[];
  generationWh: bigint[];
}

/** The owner's hub plan: charge `chargeW` from `fromHour` to `toHour` UTC (load on the forecast). */
export interface HubPlan {
  chargeW: number;
  fromHour: number;
  toHour: number;
}

/** Samples per interval when averaging the profiles (one every `L / SAMPLES` seconds). */
const SAMPLES = 30;

/**
 * The day profile of one cell: Wh per interval for intervals 0 .. 86400/L - 1 of a UTC day.
 * @example cellProfile({ cell, seed: 7, intervalSeconds: 900 }).generationWh[48] // Wh from 12:00 to 12:15
 */
export function cellProfile(parameters: {
  cell: TopologyCell;
  seed: number;
  intervalSeconds: number;
  /** A UTC midnight: the day whose weather the agent expects. */
  day: number;
  hubPlan?: HubPlan | undefined;
}): CellProfile {
  const { cell, seed, intervalSeconds: L, day, hubPlan } = parameters;
  const n = Math.max(1, Math.floor(86_400 / L));
  const pvKey = keyOf(`${cell.name}/pv`);
  const loadKeys = cell.loads.map((l) => keyOf(`${cell.name}/${l.name}`));
  const loadWh: bigint[] = [];
  const generationWh: bigint[] = [];
  for (let i = 0; i < n; i++) {
    let pvWs = 0;
    let loadWs = 0;
    const step = L / SAMPLES;
    for (let s = 0; s < SAMPLES; s++) {
      const t = day + i * L + Math.floor((s + 0.5) * step);
      pvWs += pvPower(seed, pvKey, cell.pv.peakW, t) * step;
      loadWs +=
        cell.loads.reduce((sum, l, j) => sum + loadPower(seed, loadKeys[j] ?? 0, l.kind, l.meanW, t), 0) *
        step;
    }
    const hour = (i * L) / 3600;
    if (hubPlan && hour >= hubPlan.fromHour && hour < hubPlan.toHour) loadWs += hubPlan.chargeW * L;
    loadWh.push(BigInt(Math.round(loadWs / 3600)));
    generationWh.push(BigInt(Math.round(pvWs / 3600)));
  }
  return { loadWh, generationWh };
}
