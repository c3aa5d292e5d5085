// CONTRACT STUB — replaced by the binxml helper.
package binxml

// Dictionary is one token dictionary (version 2 or 3).
type Dictionary struct{ Version byte }

// The dictionaries; DictV3 is the client's and the default.
var (
	DictV3 = &Dictionary{Version: 3}
	DictV2 = &Dictionary{Version: 2}
)

// DictionaryFor returns the dictionary for a connection header's 4th byte.
func DictionaryFor(version byte) (*Dictionary, error) { panic("unimplemented") }

// Marshal encodes n with the v3 dictionary, with the leading flags byte 0x00.
func Marshal(n Node) ([]byte, error) { return DictV3.Marshal(n) }

// Unmarshal decodes a frame plaintext (flags byte, maybe zlib) with v3.
func Unmarshal(frame []byte) (Node, error) { return DictV3.Unmarshal(frame) }

// Marshal encodes n with the leading flags byte 0x00.
func (d *Dictionary) Marshal(n Node) ([]byte, error) { panic("unimplemented") }

// Unmarshal decodes a frame plaintext: flags byte, zlib if flag 0x02.
func (d *Dictionary) Unmarshal(frame []byte) (Node, error) { panic("unimplemented") }

// String renders n as XML-ish text for logs.
func (n Node) String() string { panic("unimplemented") }
