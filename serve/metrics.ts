/** Prometheus text metrics of `sdt serve` (GET /metrics, text format 0.0.4). */

const LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  private readonly requests = new Map<string, number>();
  promptTokens = 0;
  completionTokens = 0;
  forwardPasses = 0;
  groups = 0;
  groupRows = 0;
  private readonly latency = new Array<number>(LATENCY_BUCKETS_S.length).fill(0);
  private latencyCount = 0;
  private latencySum = 0;

  /** One answered request (any status). */
  request(endpoint: string, status: number, seconds: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.latencyCount++;
    this.latencySum += seconds;
    LATENCY_BUCKETS_S.forEach((b, i) => {
      if (seconds <= b) this.latency[i]++;
    });
  }

  render(gauges: { queued: number; runningRows: number; engineUp: boolean; engineRestarts: number }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    metric(
      'sdt_requests_total',
      'counter',
      'HTTP requests answered, by endpoint and status.',
      [...this.requests].map(([k, v]) => `sdt_requests_total{${k}} ${v}`),
    );
    metric('sdt_prompt_tokens_total', 'counter', 'Prompt tokens of answered completions.', [
      `sdt_prompt_tokens_total ${this.promptTokens}`,
    ]);
    metric('sdt_completion_tokens_total', 'counter', 'Generated tokens of answered completions.', [
      `sdt_completion_tokens_total ${this.completionTokens}`,
    ]);
    metric(
      'sdt_forward_passes_total',
      'counter',
      'Model calls of the engine groups decoded (rows of a group share its calls).',
      [`sdt_forward_passes_total ${this.forwardPasses}`],
    );
    metric('sdt_engine_groups_total', 'counter', 'Engine requests (lockstep groups) decoded.', [
      `sdt_engine_groups_total ${this.groups}`,
    ]);
    metric('sdt_engine_group_rows_total', 'counter', 'Rows decoded in those groups.', [
      `sdt_engine_group_rows_total ${this.groupRows}`,
    ]);
    metric('sdt_queue_depth', 'gauge', 'Requests waiting for the engine.', [
      `sdt_queue_depth ${gauges.queued}`,
    ]);
    metric('sdt_running_rows', 'gauge', 'Rows the engine is decoding now.', [
      `sdt_running_rows ${gauges.runningRows}`,
    ]);
    metric('sdt_engine_up', 'gauge', '1 while the engine runs, 0 while it restarts.', [
      `sdt_engine_up ${gauges.engineUp ? 1 : 0}`,
    ]);
    metric('sdt_engine_restarts_total', 'counter', 'Engine restarts after it exited.', [
      `sdt_engine_restarts_total ${gauges.engineRestarts}`,
    ]);
    metric('sdt_request_latency_seconds', 'histogram', 'Time from request to the last byte of its answer.', [
      ...LATENCY_BUCKETS_S.map((b, i) => `sdt_request_latency_seconds_bucket{le="${b}"} ${this.latency[i]}`),
      `sdt_request_latency_seconds_bucket{le="+Inf"} ${this.latencyCount}`,
      `sdt_request_latency_seconds_sum ${this.latencySum}`,
      `sdt_request_latency_seconds_count ${this.latencyCount}`,
    ]);
    return `${out.join('\n')}\n`;
  }
}
