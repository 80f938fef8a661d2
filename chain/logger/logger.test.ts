import { describe, expect, it } from 'vitest';
import { createLogger, parseLogLevel } from './index.js';

describe('logger', () => {
  it('writes one line per event at or above its level, fields as key=value', () => {
    const lines: string[] = [];
    const log = createLogger({
      name: 'oracle',
      level: 'info',
      timestamps: false,
      write: (l) => lines.push(l),
    });
    log.debug('hidden');
    log.child('m1').warn('meter stale', { reason: 'timed out', interval: 5n, skip: undefined });
    expect(lines).toEqual(['WARN  oracle/m1: meter stale reason="timed out" interval=5']);
  });

  it('takes the level from the environment, and the fallback when none is set', () => {
    expect(parseLogLevel('debug', 'info')).toBe('debug');
    expect(parseLogLevel(undefined, 'warn')).toBe('warn');
    expect(parseLogLevel('', 'warn')).toBe('warn');
  });

  it('error: refuses a level that is not one, naming the value and the levels', () => {
    expect(() => parseLogLevel('loud', 'info')).toThrow('GRIDCELL_LOG_LEVEL="loud" is not a log level');
    expect(() => parseLogLevel('toString', 'info')).toThrow(/expected one of debug, info, warn, error/);
  });
});
