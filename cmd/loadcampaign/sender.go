package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// senderArg as the first argument makes loadcampaign the baseline's
// go-mail sender process (see runSenderProcess): the ceiling of figure (a)
// is go-mail in a process of its own, as the daemon is, so that both pay
// the same for crossing to the sink's process.
const senderArg = "-baseline-sender-process"

// senderJob is what the parent asks the sender process to send, on its
// standard input.
type senderJob struct {
	Addr     string `json:"addr"`
	Conns    int    `json:"conns"`
	From     int    `json:"from"`
	N        int    `json:"n"`
	MailFrom string `json:"mail_from"`
	Subject  string `json:"subject"`
	Text     string `json:"text"`
	HTML     string `json:"html"`
	Campaign string `json:"campaign"`
	Pool     bool   `json:"pool"` // send through workers/email's Pool, not go-mail's own transaction
}

// senderReport is what the sender process answers on its standard output.
type senderReport struct {
	Sent      int    `json:"sent"`
	Errors    int    `json:"errors"`
	ElapsedNS int64  `json:"elapsed_ns"`
	Error     string `json:"error,omitempty"`
}

// senderMain is the sender process: it reads one senderJob, sends, writes
// one senderReport, and returns the exit status.
func senderMain(ctx context.Context, in io.Reader, out io.Writer) int {
	var job senderJob
	var rep senderReport
	if err := json.NewDecoder(in).Decode(&job); err != nil {
		rep.Error = "read the job: " + err.Error()
	} else {
		content := mailContent{from: job.MailFrom, subject: job.Subject, text: job.Text, html: job.HTML, campaign: job.Campaign}
		send := runBaseline
		if job.Pool {
			send = runPoolBaseline
		}
		res, err := send(ctx, job.Addr, content, job.Conns, job.From, job.N)
		rep = senderReport{Sent: res.sent, Errors: res.errors, ElapsedNS: res.elapsed.Nanoseconds()}
		if err != nil {
			rep.Error = err.Error()
		}
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil || rep.Error != "" {
		return 1
	}
	return 0
}

// runSenderProcess runs the baseline (messages from..from+n-1 over conns
// connections to addr) in a child process of this binary, and returns what
// it did and the CPU time it used.
func runSenderProcess(ctx context.Context, addr string, content mailContent, conns, from, n int, pool bool) (baselineResult, time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return baselineResult{}, 0, fmt.Errorf("baseline sender: %w", err)
	}
	job, err := json.Marshal(senderJob{Addr: addr, Conns: conns, From: from, N: n, MailFrom: content.from,
		Subject: content.subject, Text: content.text, HTML: content.html, Campaign: content.campaign, Pool: pool})
	if err != nil {
		return baselineResult{}, 0, err
	}
	cmd := exec.CommandContext(ctx, self, senderArg)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(job), &stdout, &stderr
	runErr := cmd.Run()
	var rep senderReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return baselineResult{}, 0, fmt.Errorf("baseline sender process: %v; no report (%v): %s", runErr, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if rep.Error != "" {
		return baselineResult{}, 0, fmt.Errorf("baseline sender process: %s", rep.Error)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return baselineResult{sent: rep.Sent, errors: rep.Errors, elapsed: time.Duration(rep.ElapsedNS)}, cpu, nil
}
