// A Conveyor driver in Go, from the wire protocol alone (the same steps as examples/raw-driver,
// whose README describes them), with only github.com/nats-io/nats.go. It follows the conformance
// instructions of `conveyor conformance`; a real driver does its work in follow(). Straight-line
// pipelines only. Build in GOPATH mode with Debian's packages (golang-go,
// golang-github-nats-io-go-nats-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o go-driver ./examples/go-driver
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

type obj = map[string]interface{}

var (
	prefix      = envOr("CONVEYOR_PREFIX", "conveyor")
	stream      = strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_RUNS"
	bucket      = func(kind string) string { return strings.ReplaceAll(prefix, ".", "_") + "-" + kind }
	driver      = os.Getenv("CONVEYOR_DRIVER_NAME")
	ackWait     = duration(os.Getenv("CONVEYOR_ACK_WAIT"), 30*time.Second)
	heartbeat   = duration(os.Getenv("CONVEYOR_HEARTBEAT_INTERVAL"), 5*time.Second)
	concurrency = intOr(os.Getenv("CONVEYOR_CONCURRENCY"), 4)
	host, _     = os.Hostname()
	machine     = regexp.MustCompile(`[^a-z0-9-]`).ReplaceAllString(strings.ToLower(host), "-")
	agent       = fmt.Sprintf("%s-go-%d", machine, os.Getpid())
	started     = time.Now().UTC().Format(time.RFC3339Nano)
)

func runLog(run string) string { return prefix + ".steps." + run + ".>" }
func work(run, step, drv, mach string) string {
	if mach == "" {
		mach = "any"
	}
	return fmt.Sprintf("%s.steps.%s.%s.%s.%s", prefix, run, step, drv, mach)
}

type Driver struct {
	nc *nats.Conn
	js nats.JetStreamContext
	mu sync.Mutex
	// Running steps by run: a cancel aborts them.
	active map[string]map[string]context.CancelFunc
}

func main() {
	if !regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`).MatchString(driver) {
		fail("CONVEYOR_DRIVER_NAME=%q: a driver name (lowercase letters, digits, \"-\")", driver)
	}
	nc, err := nats.Connect(envOr("NATS_URL", envOr("CONVEYOR_NATS_URL", nats.DefaultURL)), nats.Name("go-driver("+driver+")"))
	if err != nil {
		fail("cannot connect to NATS: %v", err)
	}
	js, _ := nc.JetStream()
	d := &Driver{nc: nc, js: js, active: map[string]map[string]context.CancelFunc{}}
	if err := ensureConsumer(js, driver); err != nil {
		fail("consumer %s: %v", driver, err)
	}
	nc.Subscribe(prefix+".control.*.cancel", func(m *nats.Msg) {
		t := strings.Split(m.Subject, ".")
		d.mu.Lock()
		for _, cancel := range d.active[t[len(t)-2]] {
			cancel()
		}
		d.mu.Unlock()
	})
	go func() {
		for ; ; time.Sleep(heartbeat) {
			d.heartbeat()
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for i := 0; i < concurrency; i++ {
		// One pull of one message per slot, on the driver's shared durable consumer.
		sub, err := js.PullSubscribe(work("*", "*", driver, ""), driver, nats.Bind(stream, driver))
		if err != nil {
			fail("pull subscription: %v", err)
		}
		go func() {
			for {
				msgs, err := sub.Fetch(1, nats.MaxWait(5*time.Second))
				if err == nil && len(msgs) == 1 {
					d.handle(msgs[0])
				}
			}
		}()
	}
	fmt.Printf("go driver %q serving %s as agent %s\n", driver, work("*", "*", driver, ""), agent)
	<-stop
	js.Publish("$KV."+bucket("agents")+"."+agent, nil) // an empty entry: gone
	nc.Drain()
}

func (d *Driver) heartbeat() {
	d.mu.Lock()
	running := []obj{}
	for run, steps := range d.active {
		for step := range steps {
			running = append(running, obj{"runId": run, "stepId": step, "driver": driver, "since": started})
		}
	}
	d.mu.Unlock()
	info, _ := json.Marshal(obj{"id": agent, "drivers": []string{driver}, "machine": machine, "host": host, "pid": os.Getpid(), "concurrency": concurrency, "running": running, "startedAt": started, "lastHeartbeat": now()})
	d.js.Publish("$KV."+bucket("agents")+"."+agent, info)
}

func (d *Driver) handle(m *nats.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	msg, why := readStepMessage(m)
	if why != "" {
		d.deadLetter(m, meta, why)
		return
	}
	run := msg["runId"].(string)
	steps := msg["pipeline"].(obj)["steps"].([]interface{})
	index := int(msg["stepIndex"].(float64))
	step := steps[index].(obj)
	stepID := step["id"].(string)
	keep := time.NewTicker(ackWait / 3)
	defer keep.Stop()
	go func() {
		for range keep.C {
			m.InProgress()
		}
	}()

	attempt, expect, ok := d.judge(run, stepID, meta.Sequence.Stream)
	if !ok {
		m.AckSync()
		return
	}
	if stop := d.stopOrder(run); stop != "" && msg["mode"] == "normal" && step["always"] != true {
		d.handOff(m, msg, "cancelled", obj{"success": false, "message": stop}, obj{"attempt": 0, "status": "skipped", "message": stop}, expect)
		return
	}
	claimID := fmt.Sprintf("%s.%d.claim.%d.%s.%d", run, index, attempt, agent, meta.NumDelivered)
	claim, err := d.append(run, prefix+".steps."+run+"."+stepID+".claim", record("claim", msg, attempt), claimID, expect, stepHeaders(msg))
	if err != nil {
		m.NakWithDelay(time.Second) // someone else moved the run on: judged again
		return
	}
	t0 := time.Now()
	status, output := d.run(msg, step, attempt)
	ms := time.Since(t0).Milliseconds()
	retries, _ := step["retries"].(float64)
	if status == "failed" && float64(attempt) < retries+1 {
		delay := time.Duration(math.Min(1000*math.Pow(2, float64(attempt-1)), 300000)) * time.Millisecond
		r := record("retry", msg, attempt)
		r["message"], r["retryInMs"], r["durationMs"] = output["message"], delay.Milliseconds(), ms
		if _, err := d.append(run, prefix+".steps."+run+"."+stepID+".retry", r, fmt.Sprintf("%s.%d.retry.%d.%s.%d", run, index, attempt, agent, meta.NumDelivered), claim, stepHeaders(msg)); err == nil {
			m.NakWithDelay(delay)
		}
		return
	}
	ended := obj{"attempt": attempt, "status": status, "agent": agent, "machine": machine, "durationMs": ms}
	for _, k := range []string{"message", "data"} {
		if v, ok := output[k]; ok && v != nil {
			ended[k] = v
		}
	}
	d.handOff(m, msg, status, output, ended, claim)
}

// judge reads the last record of the run's log: its own work at the end is attempt 1, a claim
// or retry of this step the next attempt; anything else means the run moved on.
func (d *Driver) judge(run, stepID string, workSeq uint64) (int, uint64, bool) {
	head, err := d.js.GetLastMsg(stream, runLog(run))
	if err != nil || head.Sequence < workSeq {
		return 0, 0, false
	}
	if head.Sequence == workSeq {
		return 1, head.Sequence, true
	}
	t := strings.Split(head.Subject, ".")
	if len(t) < 2 || t[len(t)-2] != stepID {
		return 0, 0, false
	}
	var r struct{ Attempt int }
	json.Unmarshal(head.Data, &r)
	switch t[len(t)-1] {
	case "claim", "retry":
		return r.Attempt + 1, head.Sequence, true
	case "release":
		return r.Attempt, head.Sequence, true
	}
	return 0, 0, false
}

func (d *Driver) stopOrder(run string) string {
	e, err := d.js.GetLastMsg("KV_"+bucket("cancels"), "$KV."+bucket("cancels")+"."+run)
	if err != nil || e.Header.Get("KV-Operation") != "" {
		return ""
	}
	var o struct{ Message string }
	if json.Unmarshal(e.Data, &o) != nil || o.Message == "" {
		return "the run was cancelled"
	}
	return o.Message
}

// run does one attempt, bounded by the step's timeout, aborted by a cancel; its lines go to the run's logs.
func (d *Driver) run(msg obj, step obj, attempt int) (string, obj) {
	run, stepID := msg["runId"].(string), step["id"].(string)
	timeout := 3600.0
	if t, ok := step["timeout"].(float64); ok && t > 0 {
		timeout = t
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout*float64(time.Second)))
	cancelled := false
	d.mu.Lock()
	if d.active[run] == nil {
		d.active[run] = map[string]context.CancelFunc{}
	}
	d.active[run][stepID] = func() { cancelled = true; cancel() }
	d.mu.Unlock()
	defer func() {
		cancel()
		d.mu.Lock()
		delete(d.active[run], stepID)
		if len(d.active[run]) == 0 {
			delete(d.active, run)
		}
		d.mu.Unlock()
	}()
	seq := 0
	logLine := func(streamName, line string) {
		seq++
		b, _ := json.Marshal(obj{"runId": run, "stepId": stepID, "driver": driver, "attempt": attempt, "seq": seq, "ts": now(), "stream": streamName, "line": line})
		d.js.Publish(fmt.Sprintf("%s.logs.%s.%s.%s", prefix, run, driver, stepID), b)
	}
	logLine("system", fmt.Sprintf("%s: attempt %d on agent %s (go driver)", stepID, attempt, agent))
	output, err := follow(ctx, msg, step, logLine)
	switch {
	case cancelled:
		return "cancelled", obj{"success": false, "message": "the run was cancelled"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %gs", timeout)
	}
	if err != nil {
		logLine("system", "error: "+err.Error())
		return "failed", obj{"success": false, "message": err.Error(), "agent": agent, "machine": machine}
	}
	output["agent"], output["machine"] = agent, machine
	if output["success"] == true {
		return "succeeded", output
	}
	return "failed", output
}

// follow does what the step's conformance instruction says (a real driver's work goes here).
func follow(ctx context.Context, msg obj, step obj, logLine func(string, string)) (obj, error) {
	config, _ := step["config"].(obj)
	c, _ := config["conformance"].(obj)
	text, _ := c["message"].(string)
	switch c["action"] {
	case "succeed":
		out := obj{"success": true}
		if c["data"] != nil {
			out["data"] = c["data"]
		}
		if text != "" {
			out["message"] = text
		}
		return out, nil
	case "echo":
		received := obj{}
		for id, o := range msg["outputs"].(obj) {
			received[id] = o.(obj)["data"]
		}
		return obj{"success": true, "data": obj{"received": received}}, nil
	case "fail":
		return obj{"success": false, "message": text}, nil
	case "throw":
		panicked := func() (err error) {
			defer func() { err = fmt.Errorf("%v", recover()) }()
			panic(text)
		}
		return nil, panicked()
	case "sleep":
		ms, _ := c["ms"].(float64)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return obj{"success": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "log":
		n, _ := c["lines"].(float64)
		for i := 1; i <= int(n); i++ {
			logLine("stdout", fmt.Sprintf("line %d", i))
		}
		return obj{"success": true}, nil
	}
	return obj{"success": false, "message": fmt.Sprintf("no conformance instruction this driver knows (%v)", c["action"])}, nil
}

// handOff stores the one record that ends the step and says what follows (libs/runs planHandOff,
// for a straight line), fenced on the step's last record, and only then acks.
func (d *Driver) handOff(m *nats.Msg, msg obj, status string, output obj, ended obj, expect uint64) {
	run := msg["runId"].(string)
	steps := msg["pipeline"].(obj)["steps"].([]interface{})
	i := int(msg["stepIndex"].(float64))
	step := steps[i].(obj)
	from := obj{"stepIndex": i, "stepId": step["id"], "driver": step["driver"], "at": now()}
	for k, v := range ended {
		from[k] = v
	}
	if msg["machine"] != nil {
		from["pin"] = msg["machine"]
	}
	outputs := obj{}
	for k, v := range msg["outputs"].(obj) {
		outputs[k] = v
	}
	if status != "cancelled" {
		outputs[step["id"].(string)] = output
	}
	next := obj{}
	for k, v := range msg {
		if k != "from" && k != "skipped" {
			next[k] = v
		}
	}
	next["outputs"], next["from"] = outputs, from
	var end obj
	if msg["mode"] == "normal" && status == "succeeded" {
		if i+1 < len(steps) {
			next["stepIndex"] = i + 1
		} else {
			next, end = nil, obj{"status": "succeeded", "from": from}
		}
	} else {
		outcome, _ := msg["outcome"].(obj)
		if msg["mode"] == "normal" {
			message := fmt.Sprintf("step %q failed", step["id"])
			if s, _ := output["message"].(string); s != "" {
				message += ": " + s
			}
			if status == "cancelled" {
				message = output["message"].(string)
			} else {
				status = "failed"
			}
			outcome = obj{"status": status, "stepId": step["id"], "message": message}
		}
		skipped := []int{}
		cleanup := -1
		for j := i + 1; j < len(steps); j++ {
			always := steps[j].(obj)["always"] == true
			if !always && msg["mode"] == "normal" {
				skipped = append(skipped, j)
			}
			if always && cleanup < 0 {
				cleanup = j
			}
		}
		if cleanup >= 0 {
			next["stepIndex"], next["mode"], next["outcome"] = cleanup, "cleanup", outcome
		} else {
			next, end = nil, obj{"status": outcome["status"], "message": outcome["message"], "from": from}
		}
		if len(skipped) > 0 && next != nil {
			next["skipped"] = skipped
		} else if len(skipped) > 0 {
			end["skipped"] = skipped
		}
	}
	var err error
	if next != nil {
		s := steps[int(toFloat(next["stepIndex"]))].(obj)
		mach, _ := next["machine"].(string)
		ensureConsumer(d.js, s["driver"].(string))
		_, err = d.append(run, work(run, s["id"].(string), s["driver"].(string), mach), next, fmt.Sprintf("%s.%v.%v", run, next["stepIndex"], next["mode"]), expect, stepHeaders(next))
	} else {
		end["v"], end["kind"], end["runId"], end["at"] = 1, "end", run, from["at"]
		h := nats.Header{}
		h.Set("Conveyor-Run-Id", run)
		_, err = d.append(run, prefix+".steps."+run+".end", end, run+".end", expect, h)
	}
	// Refused: another agent took the step over, or the run moved on; its later delivery only acks.
	if err == nil {
		m.AckSync()
	}
}

// append publishes a record only if the run's log still ends at expect; a refusal whose log ends
// with this very record (same message id) was an earlier try of this write, stored.
func (d *Driver) append(run, subject string, body obj, msgID string, expect uint64, h nats.Header) (uint64, error) {
	data, _ := json.Marshal(body)
	m := &nats.Msg{Subject: subject, Data: data, Header: h}
	h.Set("Nats-Msg-Id", msgID)
	h.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(expect, 10))
	h.Set("Nats-Expected-Last-Subject-Sequence-Subject", runLog(run))
	ack, err := d.js.PublishMsg(m)
	if err == nil {
		return ack.Sequence, nil
	}
	var api *nats.APIError
	if errors.As(err, &api) && api.ErrorCode == nats.JSErrCodeStreamWrongLastSequence {
		if head, e := d.js.GetLastMsg(stream, runLog(run)); e == nil && head.Header.Get("Nats-Msg-Id") == msgID {
			return head.Sequence, nil
		}
	}
	return 0, err
}

func (d *Driver) deadLetter(m *nats.Msg, meta *nats.MsgMetadata, reason string) {
	payload := m.Data
	if len(payload) > 65536 {
		payload = payload[:65536]
	}
	b, _ := json.Marshal(obj{"driver": driver, "subject": m.Subject, "reason": reason, "agent": agent, "payload": base64.StdEncoding.EncodeToString(payload), "headers": m.Header, "streamSeq": meta.Sequence.Stream, "at": now()})
	if _, err := d.js.Publish(prefix+".dlq."+driver, b, nats.MsgId(fmt.Sprintf("dlq.%s.%d", meta.Stream, meta.Sequence.Stream))); err != nil {
		m.NakWithDelay(5 * time.Second)
		return
	}
	m.Respond([]byte("+TERM " + reason)) // a termination with its reason
}

// readStepMessage is the message, or why it cannot be one for this driver and subject.
func readStepMessage(m *nats.Msg) (obj, string) {
	var msg obj
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		return nil, "payload is not JSON: " + err.Error()
	}
	if msg["v"] != 1.0 {
		return nil, "not a step message of version 1"
	}
	p, _ := msg["pipeline"].(obj)
	steps, _ := p["steps"].([]interface{})
	i, ok := msg["stepIndex"].(float64)
	run, _ := msg["runId"].(string)
	if !ok || i < 0 || int(i) >= len(steps) || run == "" {
		return nil, "runId, pipeline.steps or stepIndex is missing or malformed"
	}
	step, _ := steps[int(i)].(obj)
	if _, ok := msg["outputs"].(obj); !ok || (msg["mode"] != "normal" && msg["mode"] != "cleanup") {
		return nil, "mode or outputs is malformed"
	}
	t := strings.Split(m.Subject, ".")
	if step == nil || t[len(t)-4] != run || t[len(t)-3] != step["id"] || step["driver"] != driver || t[len(t)-2] != driver {
		return nil, "the message is not for this run, step and driver as its subject names them"
	}
	return msg, ""
}

func record(kind string, msg obj, attempt int) obj {
	i := int(msg["stepIndex"].(float64))
	step := msg["pipeline"].(obj)["steps"].([]interface{})[i].(obj)
	return obj{"v": 1, "kind": kind, "runId": msg["runId"], "stepIndex": i, "stepId": step["id"], "attempt": attempt, "agent": agent, "machine": machine, "at": now()}
}

func stepHeaders(msg obj) nats.Header {
	i := int(toFloat(msg["stepIndex"]))
	step := msg["pipeline"].(obj)["steps"].([]interface{})[i].(obj)
	r := msg["resource"].(obj)
	h := nats.Header{}
	h.Set("Conveyor-Run-Id", msg["runId"].(string))
	h.Set("Conveyor-Pipeline", fmt.Sprint(msg["pipeline"].(obj)["name"]))
	h.Set("Conveyor-Step", fmt.Sprint(step["id"]))
	h.Set("Conveyor-Step-Index", strconv.Itoa(i))
	h.Set("Conveyor-Driver", fmt.Sprint(step["driver"]))
	h.Set("Conveyor-Resource", fmt.Sprintf("%v/%v@%v", r["type"], r["name"], r["version"]))
	h.Set("Conveyor-Mode", fmt.Sprint(msg["mode"]))
	return h
}

// ensureConsumer makes sure of the durable consumer every copy of a driver shares (as the SDK makes it).
func ensureConsumer(js nats.JetStreamContext, drv string) error {
	cfg := &nats.ConsumerConfig{Durable: drv, FilterSubject: work("*", "*", drv, ""), AckPolicy: nats.AckExplicitPolicy, DeliverPolicy: nats.DeliverAllPolicy, AckWait: ackWait, MaxDeliver: -1, MaxAckPending: 10000}
	if _, err := js.AddConsumer(stream, cfg); err != nil {
		if _, err := js.UpdateConsumer(stream, cfg); err != nil {
			return err
		}
	}
	return nil
}

func toFloat(v interface{}) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func envOr(k, fallback string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return fallback
}

func duration(raw string, fallback time.Duration) time.Duration {
	if d, err := time.ParseDuration(raw); err == nil && d > 0 {
		return d
	}
	return fallback
}

func intOr(raw string, fallback int) int {
	if n, err := strconv.Atoi(raw); err == nil && n > 0 {
		return n
	}
	return fallback
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
