package binxml

// ChildrenByTag returns the children with the tag, in order.
func (n Node) ChildrenByTag(tag string) []Node {
	var out []Node
	for _, c := range n.Children {
		if c.Tag == tag {
			out = append(out, c)
		}
	}
	return out
}

// HasContent reports whether n has children (possibly an empty list) or
// bytes content.
func (n Node) HasContent() bool { return n.Children != nil || n.Content != nil }
