// A benchmark harness for bench/checker.py: checks a raftlab JSONL history (read, write and
// cas on integer values, per key) with Porcupine, so that both checkers are timed, whole
// process, on the same file. It is built against a Porcupine checkout given by
// `bench/checker.py --porcupine DIR`; Porcupine itself is not part of raftlab.
//
// Usage: harness HISTORY.jsonl   (prints "linearizable", "not linearizable" or "unknown")
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type record struct {
	Type    string          `json:"type"`
	Process json.RawMessage `json:"process"`
	F       string          `json:"f"`
	Key     *int64          `json:"key"`
	Value   json.RawMessage `json:"value"`
}

type input struct {
	f        byte // 'r', 'w' or 'c'
	key      int64
	value    *int64 // a write's value
	old, new *int64 // a cas's
}

type output struct {
	value   *int64
	unknown bool // an info op: its result is unknown
}

func intOrNil(raw json.RawMessage) *int64 {
	var v *int64
	_ = json.Unmarshal(raw, &v)
	return v
}

func equal(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int64][]porcupine.Operation{}
		var keys []int64
		for _, op := range history {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return (*int64)(nil) },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		s, i, o := state.(*int64), in.(input), out.(output)
		switch i.f {
		case 'r':
			return o.unknown || equal(o.value, s), s
		case 'w':
			return true, i.value
		default: // a crashed cas may also not have taken effect
			if equal(s, i.old) {
				return true, i.new
			}
			return o.unknown, s
		}
	},
	Equal: func(a, b interface{}) bool { return equal(a.(*int64), b.(*int64)) },
	Hash: func(state interface{}) uint64 {
		if s := state.(*int64); s != nil {
			return uint64(*s) + 1
		}
		return 0
	},
}

func main() {
	fh, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(254)
	}
	scan := bufio.NewScanner(fh)
	scan.Buffer(make([]byte, 1<<20), 1<<26)
	var ops []porcupine.Operation
	open := map[string]int{} // process -> its op in flight
	var now int64
	for scan.Scan() {
		var r record
		if err := json.Unmarshal(scan.Bytes(), &r); err != nil || r.Key == nil {
			continue // nemesis records and blank lines
		}
		now++
		proc := string(r.Process)
		if r.Type == "invoke" {
			in := input{f: r.F[0], key: *r.Key}
			if r.F == "write" {
				in.value = intOrNil(r.Value)
			} else if r.F == "cas" {
				var pair []*int64
				_ = json.Unmarshal(r.Value, &pair)
				in.old, in.new = pair[0], pair[1]
			}
			open[proc] = len(ops)
			ops = append(ops, porcupine.Operation{Input: in, Call: now, Return: -1,
				Output: output{unknown: true}})
			continue
		}
		i, ok := open[proc]
		if !ok {
			continue
		}
		delete(open, proc)
		switch r.Type {
		case "ok":
			ops[i].Return = now
			ops[i].Output = output{value: intOrNil(r.Value)}
		case "fail":
			ops[i].Input = nil // never happened: dropped below
		}
	}
	kept := ops[:0]
	for _, op := range ops {
		if op.Input == nil {
			continue
		}
		if op.Return < 0 { // info or never answered: may take effect until the end
			op.Return = now + 1
		}
		kept = append(kept, op)
	}
	switch porcupine.CheckOperationsTimeout(model, kept, 10*time.Minute) {
	case porcupine.Ok:
		fmt.Println("linearizable")
	case porcupine.Illegal:
		fmt.Println("not linearizable")
		os.Exit(1)
	default:
		fmt.Println("unknown")
		os.Exit(2)
	}
}
