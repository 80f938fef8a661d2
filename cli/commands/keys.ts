import { generatePrivateKey } from 'viem/accounts';
import { z } from 'zod';
import { DEFAULT_KEYSTORE_DIR, openKeystore } from '../../chain/keystore/index.js';
import { passwordFor } from '../context.js';
import { type Io, json } from '../io.js';
import { parseOptions, parseSubcommand, UsageError } from '../options.js';

export const keysHelp = `gridcell keys: encrypted keys (Web3 Secret Storage v3 files)

Usage:
  gridcell keys create NAME    make a new key and store it encrypted
  gridcell keys import NAME    store an existing private key (read from GRIDCELL_PRIVATE_KEY
                               or asked on the terminal, never from the command line)
  gridcell keys list           names and addresses

The password comes from GRIDCELL_PASSWORD, or is asked on the terminal. Keys are never
printed.

Options:
  --keystore DIR   where the key files are (default ${DEFAULT_KEYSTORE_DIR})
  --json           print JSON
  -h, --help       show this help
`;

const nameArg = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a key name: letters, digits, . _ -');

/** `gridcell keys ...` */
export async function keysCommand(argv: string[], io: Io): Promise<void> {
  const parsed = parseSubcommand(
    argv,
    { keystore: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    'keys',
    ['create', 'import', 'list'],
    keysHelp,
    io,
  );
  if (!parsed) return;
  const { values, action, rest } = parsed;
  const store = openKeystore(values.keystore ?? DEFAULT_KEYSTORE_DIR);
  const asJson = values.json === true;
  switch (action) {
    case 'list': {
      const keys = store.list().map(({ name, address }) => ({ name, address }));
      io.out(
        asJson
          ? json(keys)
          : keys.length
            ? `${keys.map((k) => `${k.name}  ${k.address}`).join('\n')}\n`
            : `no keys in ${store.dir}\n`,
      );
      return;
    }
    case 'create':
    case 'import': {
      const [name] = parseOptions(z.tuple([nameArg]), rest, 'keys');
      let privateKey: `0x${string}`;
      if (action === 'create') {
        privateKey = generatePrivateKey();
      } else {
        const raw =
          io.env.GRIDCELL_PRIVATE_KEY ??
          (io.askSecret ? await io.askSecret('private key (0x...): ') : undefined);
        if (raw === undefined) {
          throw new UsageError(
            'import: set GRIDCELL_PRIVATE_KEY, or run in a terminal to be asked for the key',
          );
        }
        const parsed = z
          .string()
          .regex(/^0x[0-9a-fA-F]{64}$/, 'expected 0x followed by 64 hex digits')
          .safeParse(raw.trim());
        if (!parsed.success)
          throw new UsageError(`import: invalid private key: ${parsed.error.issues[0]?.message}`);
        privateKey = parsed.data as `0x${string}`;
      }
      const stored = await store.add(name, privateKey, await passwordFor(io, `new key "${name}"`));
      io.out(
        asJson
          ? json({ name: stored.name, address: stored.address })
          : `${action === 'create' ? 'created' : 'imported'} ${stored.name}  ${stored.address}\n`,
      );
      return;
    }
  }
}
