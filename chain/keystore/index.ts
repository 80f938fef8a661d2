/**
 * Encrypted key files in the Web3 Secret Storage format, version 3 (the "keystore v3" of
 * geth, Foundry's `cast wallet` and most wallets): scrypt for the key derivation, AES-128-CTR
 * for the cipher, keccak-256 over (derived key[16..32] || ciphertext) as the MAC. Keys are
 * never printed; the password comes from a prompt or an environment variable.
 */
import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  randomUUID,
  scrypt,
  timingSafeEqual,
} from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { scryptAsync } from '@noble/hashes/scrypt';
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes, isHex, keccak256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { z } from 'zod';
import { BaseError } from '../errors/index.js';

/** Where `gridcell keys` keeps key files unless told otherwise. */
export const DEFAULT_KEYSTORE_DIR = '.gridcell/keys';

/** scrypt work factors: geth's "standard" (N = 2^18) by default; tests may lower N. */
export interface ScryptParameters {
  n: number;
  r: number;
  p: number;
}
export const STANDARD_SCRYPT: ScryptParameters = { n: 1 << 18, r: 8, p: 1 };

export class KeystoreError extends BaseError {
  override name = 'KeystoreError' as const;
}

const hex = z.string().regex(/^[0-9a-fA-F]*$/, 'expected hex without 0x');
const keyFileSchema = z.object({
  version: z.literal(3),
  id: z.string(),
  address: z.string().regex(/^(0x)?[0-9a-fA-F]{40}$/),
  name: z.string().optional(),
  crypto: z.object({
    cipher: z.literal('aes-128-ctr'),
    ciphertext: hex,
    cipherparams: z.object({ iv: hex }),
    kdf: z.literal('scrypt'),
    kdfparams: z.object({
      dklen: z.literal(32),
      n: z.number().int().positive(),
      r: z.number().int().positive(),
      p: z.number().int().positive(),
      salt: hex,
    }),
    mac: hex,
  }),
});
export type KeyFile = z.infer<typeof keyFileSchema>;

/**
 * scrypt through OpenSSL, or through @noble/hashes when OpenSSL refuses the parameters:
 * OpenSSL enforces RFC 7914's N < 2^(16 r), which some key files break, among them the
 * specification's own test vector (N = 2^18 with r = 1).
 */
async function derive(password: string, salt: Buffer, params: ScryptParameters): Promise<Buffer> {
  try {
    return await deriveNative(password, salt, params);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS') throw error;
    const key = await scryptAsync(password.normalize('NFKC'), salt, {
      N: params.n,
      r: params.r,
      p: params.p,
      dkLen: 32,
    });
    return Buffer.from(key);
  }
}

function deriveNative(password: string, salt: Buffer, params: ScryptParameters): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    // OpenSSL needs about 128 * r * (N + p) bytes; Node's default cap (32 MiB) is below what
    // geth's standard N = 2^18, r = 8 takes, so the cap is raised with room to spare.
    const maxmem = 256 * params.r * (params.n + params.p) + 32 * 1024 * 1024;
    try {
      scrypt(
        password.normalize('NFKC'),
        salt,
        32,
        { N: params.n, r: params.r, p: params.p, maxmem },
        (err, key) => (err ? reject(err) : resolvePromise(key)),
      );
    } catch (error) {
      reject(error);
    }
  });
}

function mac(derived: Buffer, ciphertext: Buffer): Buffer {
  return Buffer.from(hexToBytes(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext]))));
}

/** Encrypts a private key into a v3 key file. */
export async function encryptKey(
  privateKey: Hex,
  password: string,
  options: { name?: string; scrypt?: ScryptParameters } = {},
): Promise<KeyFile> {
  const params = options.scrypt ?? STANDARD_SCRYPT;
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const derived = await derive(password, salt, params);
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(hexToBytes(privateKey))), cipher.final()]);
  return {
    version: 3,
    id: randomUUID(),
    address: privateKeyToAccount(privateKey).address.slice(2).toLowerCase(),
    ...(options.name !== undefined ? { name: options.name } : {}),
    crypto: {
      cipher: 'aes-128-ctr',
      ciphertext: ciphertext.toString('hex'),
      cipherparams: { iv: iv.toString('hex') },
      kdf: 'scrypt',
      kdfparams: { dklen: 32, n: params.n, r: params.r, p: params.p, salt: salt.toString('hex') },
      mac: mac(derived, ciphertext).toString('hex'),
    },
  };
}

/** Decrypts a v3 key file; a wrong password fails the MAC check with a clear message. */
export async function decryptKey(file: KeyFile, password: string): Promise<Hex> {
  const { kdfparams } = file.crypto;
  const derived = await derive(password, Buffer.from(kdfparams.salt, 'hex'), kdfparams);
  const ciphertext = Buffer.from(file.crypto.ciphertext, 'hex');
  const expected = Buffer.from(file.crypto.mac, 'hex');
  const actual = mac(derived, ciphertext);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new KeystoreError(`wrong password for key ${file.name ?? file.address}`);
  }
  const decipher = createDecipheriv(
    'aes-128-ctr',
    derived.subarray(0, 16),
    Buffer.from(file.crypto.cipherparams.iv, 'hex'),
  );
  const key = bytesToHex(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  if (
    privateKeyToAccount(key).address.slice(2).toLowerCase() !== file.address.replace(/^0x/, '').toLowerCase()
  ) {
    throw new KeystoreError(
      `key file ${file.name ?? file.address} is corrupt: the key does not match its address`,
    );
  }
  return key;
}

export interface StoredKey {
  name: string;
  address: Address;
  path: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A keystore folder: one v3 file per key, named `<name>.json`. */
export function openKeystore(dir: string = DEFAULT_KEYSTORE_DIR) {
  const root = resolve(dir);

  function pathOf(name: string): string {
    if (!NAME.test(name)) {
      throw new KeystoreError(`invalid key name "${name}"`, {
        details:
          'expected 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit',
      });
    }
    return join(root, `${name}.json`);
  }

  function read(name: string): KeyFile {
    const path = pathOf(name);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new KeystoreError(`no key named "${name}" in ${root}`, {
        details: 'see `gridcell keys list`',
        cause,
      });
    }
    const parsed = keyFileSchema.safeParse(raw);
    if (!parsed.success)
      throw new KeystoreError(`${path} is not a v3 key file`, { details: parsed.error.message });
    return parsed.data;
  }

  return {
    dir: root,
    /** Stores a private key under `name`; refuses to overwrite. */
    async add(
      name: string,
      privateKey: Hex,
      password: string,
      scrypt?: ScryptParameters,
    ): Promise<StoredKey> {
      if (!isHex(privateKey) || privateKey.length !== 66) {
        throw new KeystoreError('invalid private key', { details: 'expected 0x followed by 64 hex digits' });
      }
      const path = pathOf(name);
      const file = await encryptKey(privateKey, password, { name, ...(scrypt ? { scrypt } : {}) });
      mkdirSync(root, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
      } catch (cause) {
        throw new KeystoreError(`a key named "${name}" already exists in ${root}`, { cause });
      }
      return { name, address: getAddress(`0x${file.address}`), path };
    },
    /** Decrypts the key `name`. */
    async privateKey(name: string, password: string): Promise<Hex> {
      return decryptKey(read(name), password);
    },
    /** The address of key `name`, without the password. */
    address(name: string): Address {
      return getAddress(`0x${read(name).address.replace(/^0x/, '')}`);
    },
    /** Every key in the folder, by name. */
    list(): StoredKey[] {
      let files: string[];
      try {
        files = readdirSync(root).filter((f) => f.endsWith('.json'));
      } catch {
        return [];
      }
      return files.sort().map((f) => {
        const name = f.slice(0, -'.json'.length);
        return { name, address: this.address(name), path: join(root, f) };
      });
    },
  };
}
export type Keystore = ReturnType<typeof openKeystore>;
