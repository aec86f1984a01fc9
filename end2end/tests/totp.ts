import { createHmac } from "node:crypto";

/** The person's authenticator app (RFC 6238: SHA-1, 6 digits, 30 s), given the key the page
 * shows. Each code is for a newer step than the last (the server takes a step once), from one
 * step before now to one after: the window the server accepts. */
export class Authenticator {
  private key: Buffer;
  private lastStep = 0;

  constructor(base32: string) {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = "";
    for (const c of base32.replace(/\s/g, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
    const bytes = bits.match(/.{8}/g)!.map((b) => parseInt(b, 2));
    this.key = Buffer.from(bytes);
  }

  private static nowStep(): number {
    return Math.floor(Date.now() / 30_000);
  }

  codeAt(step: number): string {
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(step));
    const mac = createHmac("sha1", this.key).update(counter).digest();
    const offset = mac[19] & 0xf;
    const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
    return value.toString().padStart(6, "0");
  }

  /** The earliest step whose code stays valid 10 s more (the previous one in a step's first 20 s). */
  private static earliest(): number {
    const secs = Math.floor(Date.now() / 1000);
    return secs % 30 < 20 ? Math.floor(secs / 30) - 1 : Math.floor(secs / 30);
  }

  async next(): Promise<string> {
    const step = Math.max(Authenticator.earliest(), this.lastStep + 1);
    while (step > Authenticator.nowStep() + 1) await new Promise((r) => setTimeout(r, 200));
    this.lastStep = step;
    return this.codeAt(step);
  }

  last(): string {
    return this.codeAt(this.lastStep);
  }
}

