from labcheck import versions


def test_parse_forms_tools_print():
    assert versions.parse("kind v0.24.0 go1.22.6 linux/amd64") == (0, 24, 0)
    assert versions.parse("20.10.24+dfsg1") == (20, 10, 24)
    assert versions.parse("580.159.04") == (580, 159, 4)
    assert versions.parse("no digits") is None


def test_at_least_pads_and_compares():
    assert versions.at_least("24.0.7", "24.0") is True
    assert versions.at_least("20.10.24+dfsg1", "24.0") is False
    assert versions.at_least("6.18.44-fc-v669", "5.15") is True
    assert versions.at_least("3.10", "3.10.0") is True
    assert versions.at_least("?", "1") is None
