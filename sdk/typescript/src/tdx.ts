/**
 * TDX quote verification through `@phala/dcap-qvl` (pure JavaScript DCAP): Intel's root, the
 * collateral (given, or fetched from a PCCS / Intel PCS) and the verification time.
 * @module
 */
import { VerifyError } from './errors.js';

/** What a verified TDX quote says. */
export interface VerifiedQuote {
  mrtd: Uint8Array;
  rtmrs: Uint8Array[];
  reportData: Uint8Array;
  tdAttributes: Uint8Array;
  tcbStatus: string;
  advisoryIds: string[];
}

/** Options of {@link verifyTdxQuote}. */
export interface TdxOptions {
  /** DCAP collateral (`QuoteCollateralV3` JSON, as dcap-qvl reads it): an object or its text. */
  collateral?: object | string;
  /** Fetch the collateral from this PCCS / PCS base URL when none is given. */
  pccsUrl?: string;
  /** Verification time, Unix seconds (default now). */
  now?: number;
  /** Accepted TCB statuses (default `["UpToDate"]`). */
  tdxStatuses?: string[];
  /** Accept debug TDs (never in production). */
  allowDebug?: boolean;
}

interface DcapQvl {
  verify(quote: Uint8Array, collateral: unknown, nowSecs: number): {
    status: string;
    advisory_ids: string[];
    report: { type: string; data: unknown };
  };
  getCollateral(pccsUrl: string, quote: Uint8Array): Promise<unknown>;
}

async function loadDcapQvl(): Promise<DcapQvl> {
  try {
    const m = (await import('@phala/dcap-qvl')) as unknown as { default?: DcapQvl } & DcapQvl;
    return m.default ?? m;
  } catch (e) {
    throw new VerifyError(
      'Unsupported',
      `TDX quotes are verified with @phala/dcap-qvl, which could not be loaded here (${(e as Error).message}); ` +
        'TDX evidence is refused',
    );
  }
}

/**
 * Verifies a TDX quote (§12a step 3): signature chain to Intel's root, collateral, time,
 * accepted TCB status, no debug TD.
 * @throws VerifyError (`MissingInput`, `Evidence`, `TcbStatus`, `Debug`, `Unsupported`).
 */
export async function verifyTdxQuote(quote: Uint8Array, opts: TdxOptions): Promise<VerifiedQuote> {
  const dq = await loadDcapQvl();
  let collateral: unknown;
  if (opts.collateral !== undefined) {
    try {
      collateral = typeof opts.collateral === 'string' ? JSON.parse(opts.collateral) : opts.collateral;
    } catch {
      throw new VerifyError('Malformed', 'TDX collateral is not JSON');
    }
  } else if (opts.pccsUrl !== undefined) {
    try {
      collateral = await dq.getCollateral(opts.pccsUrl, quote);
    } catch (e) {
      throw new VerifyError('MissingInput', `TDX collateral could not be fetched from ${opts.pccsUrl}: ${(e as Error).message}`);
    }
  } else {
    throw new VerifyError('MissingInput', 'TDX collateral (policy.collateral, or policy.pccsUrl to fetch it)');
  }
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  let verified: ReturnType<DcapQvl['verify']>;
  try {
    verified = dq.verify(quote, collateral, now);
  } catch (e) {
    throw new VerifyError('Evidence', `evidence does not verify: ${(e as Error).message}`);
  }
  const report = verified.report;
  let td: Record<string, Uint8Array> | undefined;
  if (report.type === 'td10') td = report.data as Record<string, Uint8Array>;
  else if (report.type === 'td15') td = (report.data as { base: Record<string, Uint8Array> }).base;
  if (!td) throw new VerifyError('Malformed', 'not a TDX quote');
  const statuses = opts.tdxStatuses ?? ['UpToDate'];
  if (!statuses.includes(verified.status)) {
    throw new VerifyError('TcbStatus', `TCB status \`${verified.status}\` is not accepted by the policy`);
  }
  const attrs = new Uint8Array(td['tdAttributes']!);
  if ((attrs[0]! & 1) !== 0 && !opts.allowDebug) {
    throw new VerifyError('Debug', 'the TEE is in debug mode (its memory is readable by the host); refused');
  }
  const b = (k: string) => new Uint8Array(td![k]!);
  return {
    mrtd: b('mrTd'),
    rtmrs: [b('rtMr0'), b('rtMr1'), b('rtMr2'), b('rtMr3')],
    reportData: b('reportData'),
    tdAttributes: attrs,
    tcbStatus: verified.status,
    advisoryIds: [...verified.advisory_ids],
  };
}
