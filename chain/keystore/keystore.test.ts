import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { decryptKey, encryptKey, type KeyFile, openKeystore } from './index.js';

/** Light scrypt for tests; real keys use geth's standard N = 2^18. */
const FAST = { n: 1 << 10, r: 8, p: 1 };

describe('keystore v3', () => {
  // The spec's own example; note its unusual work factors (r = 1, p = 8).
  it('decrypts the scrypt test vector of the Web3 Secret Storage Definition', async () => {
    const vector: KeyFile = {
      version: 3,
      id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
      address: '008aeeda4d805471df9b2a5b0f38a0c3bcba786b',
      crypto: {
        cipher: 'aes-128-ctr',
        ciphertext: 'd172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c',
        cipherparams: { iv: '83dbcc02d8ccb40e466191a123791e0e' },
        kdf: 'scrypt',
        kdfparams: {
          dklen: 32,
          n: 262144,
          r: 1,
          p: 8,
          salt: 'ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19',
        },
        mac: '2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097',
      },
    };
    expect(await decryptKey(vector, 'testpassword')).toBe(
      '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d',
    );
  });

  it('a key encrypted here decrypts to itself', async () => {
    const key = generatePrivateKey();
    const file = await encryptKey(key, 'pw', { scrypt: FAST });
    expect(file.address).toBe(privateKeyToAccount(key).address.slice(2).toLowerCase());
    expect(await decryptKey(file, 'pw')).toBe(key);
  });

  it('stores keys by name with owner-only permissions and lists them without the password', async () => {
    const store = openKeystore(mkdtempSync(join(tmpdir(), 'gridcell-keys-')));
    const key = generatePrivateKey();
    const stored = await store.add('agent-1', key, 'pw', FAST);
    expect(stored.address).toBe(privateKeyToAccount(key).address);
    expect(store.list()).toEqual([stored]);
    expect(readFileSync(stored.path, 'utf8')).not.toContain(key.slice(2));
    expect(await store.privateKey('agent-1', 'pw')).toBe(key);
  });

  it('error: a wrong password is refused by the MAC check', async () => {
    const file = await encryptKey(generatePrivateKey(), 'right', { scrypt: FAST, name: 'meter' });
    await expect(decryptKey(file, 'wrong')).rejects.toThrow('wrong password for key meter');
  });

  it('error: a second key with the same name does not overwrite the first', async () => {
    const store = openKeystore(mkdtempSync(join(tmpdir(), 'gridcell-keys-')));
    const first = generatePrivateKey();
    await store.add('owner', first, 'pw', FAST);
    await expect(store.add('owner', generatePrivateKey(), 'pw', FAST)).rejects.toThrow(/already exists/);
    expect(await store.privateKey('owner', 'pw')).toBe(first);
  });

  it('error: an unknown name and an invalid name say what was expected', async () => {
    const store = openKeystore(mkdtempSync(join(tmpdir(), 'gridcell-keys-')));
    expect(() => store.address('nobody')).toThrow(/no key named "nobody"/);
    await expect(store.add('../escape', generatePrivateKey(), 'pw', FAST)).rejects.toThrow(
      /invalid key name/,
    );
    await expect(store.add('ok', '0x1234', 'pw', FAST)).rejects.toThrow(/invalid private key/);
  });
});
