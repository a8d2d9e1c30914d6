package sigma

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// nodeKind says what a YAML node holds.
type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindScalar
	kindMap
	kindSeq
)

// node is a plain YAML tree with line numbers and key order kept, the form
// the rule parser walks.
type node struct {
	kind    nodeKind
	line    int
	str     string // scalar text (strings unquoted; numbers as written)
	isStr   bool   // the scalar is a string (not a number or boolean)
	keys    []string
	keyLine []int
	vals    []*node // map values (parallel to keys) or sequence items
}

// get returns a map entry, nil when absent.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kindMap {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// parseYAML parses every document of data into plain nodes.
func parseYAML(data []byte) ([]*node, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	var docs []*node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		c := converter{anchors: map[string]*node{}}
		n, err := c.convert(d.Body, 0)
		if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
	return docs, nil
}

type converter struct {
	anchors map[string]*node
}

func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}

const maxDepth = 64

func (c *converter) convert(n ast.Node, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: YAML nested too deeply", lineOf(n))
	}
	line := lineOf(n)
	switch v := n.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case *ast.NullNode:
		return &node{kind: kindNull, line: line}, nil
	case *ast.StringNode:
		return &node{kind: kindScalar, line: line, str: v.Value, isStr: true}, nil
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = v.Value.Value
		}
		return &node{kind: kindScalar, line: line, str: s, isStr: true}, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return &node{kind: kindScalar, line: line, str: n.GetToken().Value}, nil
	case *ast.TagNode:
		return c.convert(v.Value, depth+1)
	case *ast.AnchorNode:
		out, err := c.convert(v.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if v.Name != nil {
			c.anchors[v.Name.GetToken().Value] = out
		}
		return out, nil
	case *ast.AliasNode:
		name := ""
		if v.Value != nil {
			name = v.Value.GetToken().Value
		}
		out, ok := c.anchors[name]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown YAML alias *%s", line, name)
		}
		return out, nil
	case *ast.MappingKeyNode:
		return c.convert(v.Value, depth+1)
	case *ast.MappingValueNode:
		m := &node{kind: kindMap, line: line}
		if err := c.addPair(m, v, depth); err != nil {
			return nil, err
		}
		return m, nil
	case *ast.MappingNode:
		m := &node{kind: kindMap, line: line}
		for _, mv := range v.Values {
			if err := c.addPair(m, mv, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *ast.SequenceNode:
		s := &node{kind: kindSeq, line: line}
		for _, item := range v.Values {
			cn, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			s.vals = append(s.vals, cn)
		}
		return s, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node %s", line, n.Type())
}

func (c *converter) addPair(m *node, mv *ast.MappingValueNode, depth int) error {
	if mv.Key != nil && mv.Key.IsMergeKey() {
		src, err := c.convert(mv.Value, depth+1)
		if err != nil {
			return err
		}
		if src.kind == kindMap {
			for i, k := range src.keys {
				m.keys = append(m.keys, k)
				m.keyLine = append(m.keyLine, src.keyLine[i])
				m.vals = append(m.vals, src.vals[i])
			}
		}
		return nil
	}
	k, err := c.convert(mv.Key, depth+1)
	if err != nil {
		return err
	}
	if k.kind == kindMap || k.kind == kindSeq {
		return fmt.Errorf("line %d: a mapping key must be a scalar", lineOf(mv.Key))
	}
	val, err := c.convert(mv.Value, depth+1)
	if err != nil {
		return err
	}
	if val.line == 0 {
		val.line = lineOf(mv.Key)
	}
	for _, existing := range m.keys {
		if existing == k.str {
			return fmt.Errorf("line %d: duplicate key %q", lineOf(mv.Key), k.str)
		}
	}
	m.keys = append(m.keys, k.str)
	m.keyLine = append(m.keyLine, lineOf(mv.Key))
	m.vals = append(m.vals, val)
	return nil
}
