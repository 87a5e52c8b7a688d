/**
 * What the background jobs found, as every process serves it: a copy in memory of the
 * store's job reports (cluster probes, cluster syncs, provider health).
 *
 * Design note: the jobs run in one process of the installation only (the lease holder, see
 * lease.ts), yet every replica and worker answers `GET /v1/clusters/:id` and `GET
 * /v1/providers` and decides `Impersonate-Uid` by the cluster's version on the hot path.
 * So a job's report goes to the store (`put`: this process's copy at once, then the store,
 * which announces it), and every process keeps this copy, loaded at start and refreshed
 * by the store's `report` announcements (through PostgreSQL's notifications or the
 * workers' relay); a `resync` (changes may have been missed) reloads it whole. Reads are
 * synchronous map lookups. Each key's refresh is ordered: a slower, older read never
 * replaces a newer answer. A write that fails is reported to `onError` and kept here: the
 * next report (the next round) tries again.
 */
import type { JobReport, ReportJob, Store, StoreChange } from './store.js';

export type Report = Readonly<Record<string, unknown>>;

export interface JobReports {
  /** The last report of `job` about `subject`, as this process knows it. */
  get(job: ReportJob, subject: string): Report | undefined;
  /** Records a report here at once, then in the store (announced to every process); never rejects. */
  put(job: ReportJob, subject: string, report: Report): Promise<void>;
  /** Stops following the store's announcements. */
  close(): void;
}

export interface JobReportsOptions {
  /** A store error while following announcements or writing (the copy keeps its last answers). */
  readonly onError: (error: unknown) => void;
}

export async function loadJobReports(store: Pick<Store, 'listJobReports' | 'getJobReport' | 'putJobReport' | 'subscribe'>, options: JobReportsOptions): Promise<JobReports> {
  const reports = new Map<string, Report>();
  /** Per key, the number of refreshes started: only the newest one's answer is kept. */
  const generations = new Map<string, number>();
  let reloads = 0;

  const keyOf = (job: ReportJob, subject: string): string => `${job}/${subject}`;

  function remember(report: JobReport): void {
    reports.set(keyOf(report.job, report.subject), report.report);
  }

  async function reloadAll(): Promise<void> {
    const reload = ++reloads;
    const all = await store.listJobReports();
    if (reload !== reloads) return;
    reports.clear();
    for (const report of all) remember(report);
  }

  function refresh(key: string): void {
    const slash = key.indexOf('/');
    if (slash < 0) return;
    const job = key.slice(0, slash) as ReportJob;
    const subject = key.slice(slash + 1);
    const generation = (generations.get(key) ?? 0) + 1;
    generations.set(key, generation);
    store.getJobReport(job, subject).then((report) => {
      if (generations.get(key) !== generation) return;
      generations.delete(key);
      if (report === undefined) reports.delete(key);
      else remember(report);
    }, options.onError);
  }

  const unsubscribe = store.subscribe((change: StoreChange) => {
    if (change.kind === 'report') refresh(change.key);
    else if (change.kind === 'resync') reloadAll().catch(options.onError);
  });
  try {
    await reloadAll();
  } catch (error) {
    unsubscribe();
    throw error;
  }

  return {
    get: (job, subject) => reports.get(keyOf(job, subject)),
    async put(job, subject, report) {
      const key = keyOf(job, subject);
      reports.set(key, report);
      // A refresh already under way must not bring back what this replaces.
      generations.set(key, (generations.get(key) ?? 0) + 1);
      await store.putJobReport(job, subject, report).catch(options.onError);
    },
    close: unsubscribe,
  };
}
