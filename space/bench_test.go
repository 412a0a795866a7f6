package space

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkFLOPsB0(b *testing.B) {
	a := B0()
	for b.Loop() {
		_ = a.FLOPs()
	}
}

func BenchmarkLayersB7(b *testing.B) {
	a, _ := Preset("efficientnet-b7")
	for b.Loop() {
		_ = a.Layers()
	}
}

func BenchmarkDecodeFLOPs(b *testing.B) {
	s := DefaultSpace()
	r := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		a, err := s.Decode(s.Sample(r))
		if err != nil {
			b.Fatal(err)
		}
		_ = a.FLOPs()
	}
}

func BenchmarkKey(b *testing.B) {
	s := DefaultSpace()
	c := s.Sample(rand.New(rand.NewPCG(1, 1)))
	for b.Loop() {
		_ = s.Key(c)
	}
}
