import { Inject, Injectable } from '@nestjs/common';
import type { ReportJob, Run } from '@conveyor/contracts';
import { JETSTREAM, isWrongLastSequence, type JetStreamContext } from '@conveyor/jetstream';
import { plannedReports, type RunMoment } from '@conveyor/reports';

/**
 * The outbox of commit statuses and notifications: the run projector hands it each run's start
 * and end, and it stores the reports they call for on the reports stream, before the projector
 * acks the records it folded. Each report has its own subject and is published only while that
 * subject is empty, so folding a start or end again (a redelivery, a second gateway) stores
 * nothing twice. Sending is the ReportSender's.
 */
@Injectable()
export class ReportOutbox {
  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  async store(run: Run, moment: RunMoment): Promise<ReportJob[]> {
    const jobs = plannedReports(run, moment, { publicUrl: this.ctx.config.reports.publicUrl, now: new Date().toISOString() });
    for (const job of jobs) {
      const [, kind, which] = job.id.split('.');
      try {
        await this.ctx.js.publish(this.ctx.subjects.report(run.id, kind as 'status' | 'notify', which), JSON.stringify(job), { msgID: job.id, expect: { lastSubjectSequence: 0 } });
      } catch (err) {
        // Stored already: this start or end was folded before.
        if (!isWrongLastSequence(err)) throw err;
      }
    }
    return jobs;
  }
}
