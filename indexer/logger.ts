/** What the indexer and the GraphQL server log through: one line per call. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Lines with a timestamp and a prefix on stderr (stdout stays for --json output). */
export function createConsoleLogger(prefix: string, write: (line: string) => void = consoleWrite): Logger {
  const line = (level: string, message: string) =>
    write(`${new Date().toISOString()} ${prefix}${level === 'info' ? '' : ` ${level}`}: ${message}\n`);
  return {
    info: (m) => line('info', m),
    warn: (m) => line('warn', m),
    error: (m) => line('error', m),
  };
}

function consoleWrite(line: string): void {
  process.stderr.write(line);
}

/** A logger that drops everything (tests that assert on data, not on logs). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
