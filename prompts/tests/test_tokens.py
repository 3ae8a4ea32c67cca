from prompts.tokens import count_tokens


def test_known_o200k_counts():
    # Reference ids for o200k_base: "hello world" -> [24912, 2375], "Hello, world!" -> [13225, 11, 2375, 0].
    assert count_tokens("hello world") == 2
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("The quick brown fox jumps over the lazy dog.") == 10
    assert count_tokens("") == 0


def test_special_token_text_is_counted_as_plain_text():
    # A user may paste "<|endoftext|>"; it must be counted, never raise or act as a special token.
    assert count_tokens("<|endoftext|>") > 1


def test_long_text_is_counted_in_pieces_without_error():
    text = "word " * 300_000  # 1.5 million characters: more than the encoder takes at once
    assert abs(count_tokens(text) - 300_000) <= 5


def test_counts_are_the_same_below_and_above_the_cached_length():
    # Short texts' counts are kept per process; a second call, and a text just past the
    # cached length, must count exactly like the first.
    from prompts.tokens import _CACHED_CHARS

    for repeats in (_CACHED_CHARS // 11, _CACHED_CHARS // 11 + 1):
        text = "alpha beta " * repeats
        first = count_tokens(text)
        assert count_tokens(text) == first
        assert first == 2 * repeats + 1  # "alpha", " beta" each, and the last space
