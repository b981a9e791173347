// Known answers for FaceWarden's C2SP tlog-tiles, computed by the reference implementation,
// golang.org/x/mod/sumdb/tlog (Debian: golang-go, golang-golang-x-mod-dev). Regenerate with:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run tests/vectors/tlog_tiles/main.go \
//	    > tests/vectors/tlog_tiles.json
//
// Leaf i is the bytes "leaf <i>". Go's tile paths carry the tile height ("tile/8/0/...") and
// call entry bundles "data"; C2SP tlog-tiles fixes the height at 8 and drops it, and names
// bundles "entries", so the paths are printed in the C2SP form.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type stored []tlog.Hash

func (s stored) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s[x]
	}
	return out, nil
}

// tiles serves tile data computed from the stored hashes, as a log would.
type tiles struct{ s stored }

func (t tiles) Height() int { return height }
func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		data, err := tlog.ReadTileData(tile, t.s)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func c2sp(path string) string {
	path = strings.Replace(path, "tile/8/", "tile/", 1)
	return strings.Replace(path, "tile/data/", "tile/entries/", 1)
}

func goPath(path string) string {
	path = strings.Replace(path, "tile/entries/", "tile/data/", 1)
	return strings.Replace(path, "tile/", "tile/8/", 1)
}

func hexes(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, hex.EncodeToString(h[:]))
	}
	return out
}

type tileAnswer struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

type sizeAnswer struct {
	Size  int64        `json:"size"`
	Root  string       `json:"root"`
	Tiles []tileAnswer `json:"tiles"`
}

type newTiles struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Paths []string `json:"paths"`
}

type pathAnswer struct {
	Level   int    `json:"level"`
	Index   int64  `json:"index"`
	Width   int    `json:"width"`
	Entries bool   `json:"entries"`
	Path    string `json:"path"`
}

type parseAnswer struct {
	Path string `json:"path"`
	OK   bool   `json:"ok"`
}

type proofAnswer struct {
	Size  int64    `json:"size"`
	Index int64    `json:"index"`
	First int64    `json:"first"`
	Proof []string `json:"proof"`
}

func main() {
	const total = 70000
	var s stored
	for i := int64(0); i < total; i++ {
		hs, err := tlog.StoredHashes(i, []byte(fmt.Sprintf("leaf %d", i)), s)
		if err != nil {
			panic(err)
		}
		s = append(s, hs...)
	}
	root := func(n int64) tlog.Hash {
		h, err := tlog.TreeHash(n, s)
		if err != nil {
			panic(err)
		}
		return h
	}
	out := map[string]any{
		"source": "golang.org/x/mod/sumdb/tlog, leaf i = \"leaf <i>\", tile height 8",
	}

	var sizes []sizeAnswer
	for _, n := range []int64{1, 2, 7, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70000} {
		a := sizeAnswer{Size: n, Root: hexes([]tlog.Hash{root(n)})[0]}
		for _, t := range tlog.NewTiles(height, 0, n) {
			data, err := tlog.ReadTileData(t, s)
			if err != nil {
				panic(err)
			}
			sum := sha256.Sum256(data)
			a.Tiles = append(a.Tiles, tileAnswer{c2sp(t.Path()), hex.EncodeToString(sum[:])})
		}
		sizes = append(sizes, a)
	}
	out["sizes"] = sizes

	var grown []newTiles
	for _, p := range [][2]int64{{0, 1}, {1, 2}, {255, 256}, {256, 257}, {300, 70000}, {65535, 65536}, {65536, 65537}, {69999, 70000}} {
		g := newTiles{Old: p[0], New: p[1], Paths: []string{}}
		for _, t := range tlog.NewTiles(height, p[0], p[1]) {
			g.Paths = append(g.Paths, c2sp(t.Path()))
		}
		grown = append(grown, g)
	}
	out["new_tiles"] = grown

	var paths []pathAnswer
	for _, p := range []pathAnswer{
		{Level: 0, Index: 0, Width: 256}, {Level: 0, Index: 999, Width: 256},
		{Level: 0, Index: 1000, Width: 256}, {Level: 0, Index: 1234067, Width: 256},
		{Level: 2, Index: 5, Width: 17}, {Level: 63, Index: 1000000000, Width: 1},
		{Level: 0, Index: 42, Width: 255, Entries: true}, {Level: 0, Index: 1234067, Width: 256, Entries: true},
	} {
		l := p.Level
		if p.Entries {
			l = -1
		}
		t := tlog.Tile{H: height, L: l, N: p.Index, W: p.Width}
		p.Path = c2sp(t.Path())
		paths = append(paths, p)
	}
	out["paths"] = paths

	var parsed []parseAnswer
	for _, p := range []string{
		"tile/0/000", "tile/0/001", "tile/0/x001/234", "tile/0/x001/x234/067", "tile/3/x001/234.p/5",
		"tile/entries/000", "tile/entries/x001/234.p/255", "tile/0/1", "tile/0/0001", "tile/0/x000/234",
		"tile/0/001.p/0", "tile/0/001.p/256", "tile/0/001.p/05", "tile/0/001.p/", "tile/00/001",
		"tile/-1/001", "tile/0/x1/234", "tile/0/234/x001", "tile/0/abc", "tile/0/001.p/5/6",
		"tile/0/x001", "tile/0", "tile/0/001/", "tile/0/+01", "tile/0/x+01/234",
	} {
		_, err := tlog.ParseTilePath(goPath(p))
		parsed = append(parsed, parseAnswer{p, err == nil})
	}
	out["parse"] = parsed

	var proofs []proofAnswer
	for _, p := range [][2]int64{{0, 1}, {5, 7}, {255, 256}, {256, 257}, {1000, 65537}, {69999, 70000}, {12345, 70000}} {
		r := tlog.TileHashReader(tlog.Tree{N: p[1], Hash: root(p[1])}, tiles{s})
		proof, err := tlog.ProveRecord(p[1], p[0], r)
		if err != nil {
			panic(err)
		}
		proofs = append(proofs, proofAnswer{Size: p[1], Index: p[0], Proof: hexes(proof)})
	}
	out["inclusion"] = proofs
	proofs = nil
	for _, p := range [][2]int64{{1, 2}, {7, 255}, {256, 257}, {300, 65536}, {65536, 70000}, {69999, 70000}} {
		r := tlog.TileHashReader(tlog.Tree{N: p[1], Hash: root(p[1])}, tiles{s})
		proof, err := tlog.ProveTree(p[1], p[0], r)
		if err != nil {
			panic(err)
		}
		proofs = append(proofs, proofAnswer{Size: p[1], First: p[0], Proof: hexes(proof)})
	}
	out["consistency"] = proofs

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
