package space

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestArchJSONRoundTrip(t *testing.T) {
	a, _ := Preset("efficientnet-b4")
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"op":"sepconv"`) || !strings.Contains(string(data), `"op":"mbconv"`) {
		t.Errorf("ops are not written by name: %s", data)
	}
	var back Arch
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(a) {
		t.Errorf("JSON round trip: %v, want %v", back, a)
	}
	if err := json.Unmarshal([]byte(`{"blocks": [{"op": "mbconv7"}]}`), &back); err == nil || !strings.Contains(err.Error(), `op "mbconv7": must be mbconv, sepconv or conv`) {
		t.Errorf("bad op: %v", err)
	}
	if _, err := json.Marshal(Block{Op: 9}); err == nil {
		t.Error("marshalling Op(9) succeeded")
	}
}
