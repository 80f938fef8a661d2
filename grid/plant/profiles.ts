/**
 * Deterministic, seedable PV and load profiles. Power at a time is a pure function of
 * (seed, device key, Unix time): the same seed replays the same day, whatever the step size.
 * Weather and behaviour vary in 5-minute blocks, linearly interpolated, on top of daily shapes.
 */
import type { loadKinds } from '../topology/index.js';

/** 32-bit mix (after MurmurHash3's finaliser): a uniform number in [0, 1) per input. */
function hash01(seed: number, key: number, block: number): number {
  let h = (seed ^ Math.imul(key, 0x9e3779b1) ^ Math.imul(block, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h / 2 ** 32;
}

const BLOCK_SECONDS = 300;

/** Smooth noise in [0, 1): the block values, interpolated linearly over time. */
function noise(seed: number, key: number, t: number): number {
  const block = Math.floor(t / BLOCK_SECONDS);
  const f = (t - block * BLOCK_SECONDS) / BLOCK_SECONDS;
  return hash01(seed, key, block) * (1 - f) + hash01(seed, key, block + 1) * f;
}

/** Hours since midnight UTC, fractional. */
function hourOf(t: number): number {
  return (((t % 86_400) + 86_400) % 86_400) / 3600;
}

/** A string key (device name) as a number for the hash. */
export function keyOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * PV output, W (whole watts, >= 0): a clear-sky bell from 06:00 to 18:00 UTC with clouds that
 * take away up to 60 %.
 */
export function pvPower(seed: number, key: number, peakW: number, t: number): number {
  const h = hourOf(t);
  if (h <= 6 || h >= 18) return 0;
  const clearSky = Math.sin((Math.PI * (h - 6)) / 12);
  const clouds = 0.6 * noise(seed, key, t) ** 2;
  return Math.max(0, Math.round(peakW * clearSky * (1 - clouds)));
}

/** Daily shapes with mean 1 over the day (approximately), by load kind. */
const shapes: Record<(typeof loadKinds)[number], (h: number) => number> = {
  // Morning and evening peaks over a night base (a European household's standard profile).
  household: (h) =>
    0.5 + 0.9 * Math.exp(-(((h - 7.5) / 1.2) ** 2)) + 1.6 * Math.exp(-(((h - 19.5) / 1.8) ** 2)),
  // Heat pump: more at night and in the morning, less in the warm afternoon.
  heatPump: (h) => 1 + 0.4 * Math.cos((Math.PI * (h - 5)) / 12),
  // An EV charges in the evening: 18:00-23:00 at 4.8 x the mean, nothing else.
  ev: (h) => (h >= 18 && h < 23 ? 4.8 : 0),
  flat: () => 1,
};

/** Load power, W (whole watts, >= 0): the daily shape x mean, with +-20 % behavioural noise. */
export function loadPower(
  seed: number,
  key: number,
  kind: (typeof loadKinds)[number],
  meanW: number,
  t: number,
): number {
  const variation = 0.8 + 0.4 * noise(seed, key, t);
  return Math.max(0, Math.round(meanW * shapes[kind](hourOf(t)) * variation));
}
