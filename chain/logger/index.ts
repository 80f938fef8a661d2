/**
 * A small line logger for the daemons: one line per event, level and component first, then
 * the message and `key=value` fields, so a person reads it and grep finds it.
 */
import { BaseError } from '../errors/index.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Reads a log level given from outside (an environment variable such as
 * `GRIDCELL_LOG_LEVEL`): undefined or empty gives `fallback`, anything else must be a level.
 * @throws BaseError naming the value and the levels, never a silent logger.
 */
export function parseLogLevel(
  value: string | undefined,
  fallback: LogLevel,
  source = 'GRIDCELL_LOG_LEVEL',
): LogLevel {
  if (value === undefined || value === '') return fallback;
  if (Object.hasOwn(ORDER, value)) return value as LogLevel;
  throw new BaseError(`${source}=${JSON.stringify(value)} is not a log level`, {
    details: `expected one of ${Object.keys(ORDER).join(', ')}`,
  });
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for a part of this component: `oracle` → `oracle/meter-1`. */
  child(name: string): Logger;
}

export interface CreateLoggerParameters {
  name: string;
  /** Lowest level written; `GRIDCELL_LOG_LEVEL` sets it for the CLI. Default `info`. */
  level?: LogLevel;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** Adds an ISO timestamp (wall clock) to each line. Default true. */
  timestamps?: boolean;
}

function format(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /^[\w.:/@+-]*$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * Creates a logger.
 * @example
 * const log = createLogger({ name: 'oracle' });
 * log.warn('meter stale', { meter: '0xab…', reason: 'timeout' });
 */
export function createLogger(parameters: CreateLoggerParameters): Logger {
  const min = ORDER[parameters.level ?? 'info'];
  const write = parameters.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const timestamps = parameters.timestamps ?? true;
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const extra = fields
      ? Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => ` ${k}=${format(v)}`)
          .join('')
      : '';
    const time = timestamps ? `${new Date().toISOString()} ` : '';
    write(`${time}${level.toUpperCase().padEnd(5)} ${parameters.name}: ${message}${extra}`);
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (name) => createLogger({ ...parameters, name: `${parameters.name}/${name}` }),
  };
}

/** A logger that drops everything (tests that assert on counters, not on lines). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
