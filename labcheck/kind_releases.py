"""Which kindest/node images each kind release was built with: facts from kind's release notes, as data.

kind supports a node image only with the release that built it ("Images pre-built for this release" in each
release's notes; "You *must* use the @sha256 digest to guarantee an image built for this release"), so the pair
check (labcheck.verdicts.tools.kind_supports_node_image) looks the installed kind and the pinned image up here.

Sources, per row (read 2026-12): the default image of each release is kind's own pkg/apis/config/defaults/image.go
at that release's tag (kubernetes-sigs/kind). The other images of a release are its release notes' list as copied
into kubernetes-sigs/cluster-api test/infrastructure/kind/mapper.go ("Pre-built images for Kind v0.NN", at
0f670b7), cross-checked where a copy of the notes themselves was found (named on the row). A release whose list
could not be read has only its default image: an image missing here is "unknown" (a warning), never a pass.
"""

from __future__ import annotations

from labcheck import versions

REPO = "kindest/node"
RELEASE_NOTES = "https://github.com/kubernetes-sigs/kind/releases"

# kind release -> the node images its release notes list (newest Kubernetes first; the first is the default).
IMAGES: dict[str, tuple[str, ...]] = {
    # v0.24.0: default from the v0.24.0 tag; the rest from cluster-api's mapper (its v1.27 row is v1.27.17).
    "0.24.0": (
        "v1.31.0@sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865",
        "v1.30.4@sha256:976ea815844d5fa93be213437e3ff5754cd599b040946b5cca43ca45c2047114",
        "v1.30.3@sha256:bf91e1ef2f7d92bb7734b2b896b3dddea98f0496b34d96e37dd5d7df331b7e56",
        "v1.29.8@sha256:d46b7aa29567e93b27f7531d258c372e829d7224b25e3fc6ffdefed12476d3aa",
        "v1.29.7@sha256:f70ab5d833fca132a100c1f95490be25d76188b053f49a3c0047ff8812360baf",
        "v1.28.13@sha256:45d319897776e11167e4698f6b14938eb4d52eb381d9e3d7a9086c16c69a8110",
        "v1.28.12@sha256:fa0e48b1e83bb8688a5724aa7eebffbd6337abd7909ad089a2700bf08c30c6ea",
        "v1.27.17@sha256:3fd82731af34efe19cd54ea5c25e882985bafa2c9baefe14f8deab1737d9fabe",
        "v1.26.15@sha256:1cc15d7b1edd2126ef051e359bf864f37bbcf1568e61be4d2ed1df7a3e87b354",
        "v1.25.16@sha256:6110314339b3b44d10da7d27881849a87e092124afab5956f2e10ecdb463b025",
    ),
    # v0.25.0: default v1.31.2 from the v0.25.0 tag; v1.32.0 was added to its notes later (cluster-api's mapper).
    "0.25.0": (
        "v1.32.0@sha256:2458b423d635d7b01637cac2d6de7e1c1dca1148a2ba2e90975e214ca849e7cb",
        "v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
        "v1.30.6@sha256:b6d08db72079ba5ae1f4a88a09025c0a904af3b52387643c285442afb05ab994",
        "v1.29.10@sha256:3b2d8c31753e6c8069d4fc4517264cd20e86fd36220671fb7d0a5855103aa84b",
        "v1.28.15@sha256:a7c05c7ae043a0b8c818f5a06188bc2c4098f6cb59ca7d1856df00375d839251",
        "v1.27.16@sha256:2d21a61643eafc439905e18705b8186f3296384750a835ad7a005dceb9546d20",
        "v1.26.15@sha256:c79602a44b4056d7e48dc20f7504350f1e87530fe953428b792def00bc1076dd",
    ),
    # v0.26.0: default from the v0.26.0 tag; the rest from cluster-api's mapper.
    "0.26.0": (
        "v1.32.0@sha256:c48c62eac5da28cdadcf560d1d8616cfa6783b58f0d94cf63ad1bf49600cb027",
        "v1.31.4@sha256:2cb39f7295fe7eafee0842b1052a599a4fb0f8bcf3f83d96c7f4864c357c6c30",
        "v1.30.8@sha256:17cd608b3971338d9180b00776cb766c50d0a0b6b904ab4ff52fd3fc5c6369bf",
        "v1.29.12@sha256:62c0672ba99a4afd7396512848d6fc382906b8f33349ae68fb1dbfe549f70dec",
    ),
    # v0.27.0: default v1.32.2 from the v0.27.0 tag; v1.33.0 was added to its notes later (cluster-api's mapper).
    "0.27.0": (
        "v1.33.0@sha256:02f73d6ae3f11ad5d543f16736a2cb2a63a300ad60e81dac22099b0b04784a4e",
        "v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
        "v1.31.6@sha256:28b7cbb993dfe093c76641a0c95807637213c9109b761f1d422c2400e22b8e87",
        "v1.30.10@sha256:4de75d0e82481ea846c0ed1de86328d821c1e6a6a91ac37bf804e5313670e507",
        "v1.29.14@sha256:8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
    ),
    # v0.28.0 (replaced by v0.29.0 five days later): only its default, from the v0.28.0 tag; its list was not found.
    "0.28.0": (
        "v1.33.1@sha256:8d866994839cd096b3590681c55a6fa4a071fdaf33be7b9660e5697d2ed13002",
    ),
    # v0.29.0: default from the v0.29.0 tag; the rest from cluster-api's mapper (and submariner-io/shipyard's
    # "kind 0.29.0 hashes").
    "0.29.0": (
        "v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
        "v1.32.5@sha256:e3b2327e3a5ab8c76f5ece68936e4cafaa82edf58486b769727ab0b3b97a5b0d",
        "v1.31.9@sha256:b94a3a6c06198d17f59cca8c6f486236fa05e2fb359cbd75dabbfc348a10b211",
        "v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
    ),
    # v0.30.0: default (the workshop's kindest/node:v1.34.0) from the v0.30.0 tag; the rest from cluster-api's mapper.
    "0.30.0": (
        "v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
        "v1.33.4@sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2",
        "v1.32.8@sha256:abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
        "v1.31.12@sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
    ),
    # v0.31.0: default from the v0.31.0 tag (and the notes' copy in cloudfoundry/kind-deployment#247); the rest
    # from cluster-api's mapper.
    "0.31.0": (
        "v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        "v1.34.3@sha256:08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48",
        "v1.33.7@sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
        "v1.32.11@sha256:5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
        "v1.31.14@sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b",
    ),
    # v0.32.0: default from the v0.32.0 tag (and the notes' copy in cloudfoundry/kind-deployment#417); the rest
    # from cluster-api's mapper.
    "0.32.0": (
        "v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        "v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
        "v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
        "v1.33.12@sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
    ),
    # v0.33.0 (the newest release known here): the notes' copy in polarsquad/krops#112, the same in cluster-api's
    # mapper (no v0.33.0 tag in the kind mirror read).
    "0.33.0": (
        "v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
    ),
}
RELEASES = tuple(sorted(IMAGES, key=versions.parse))  # oldest first
OLDEST, NEWEST = RELEASES[0], RELEASES[-1]


def split(image: str) -> tuple[str, str] | None:
    """("v1.34.0", "sha256:7416...") for "kindest/node:v1.34.0@sha256:7416..." (digest "" when not pinned);
    None for an image of another repository or without a version tag."""
    name, _, digest = image.partition("@")
    repo, _, tag = name.rpartition(":")
    if not repo.endswith(REPO) or "/" in tag or versions.parse(tag) is None or not tag.startswith("v"):
        return None
    return tag, digest


def minor(tag: str) -> tuple[int, int]:
    v = versions.parse(tag) or (0, 0)
    return (v + (0, 0))[:2]


def entries(tag: str) -> tuple[tuple[str, str], ...]:
    """(release, digest) for each known release (oldest first) whose notes list this tag."""
    return tuple((r, ref.partition("@")[2]) for r in RELEASES for ref in IMAGES[r] if ref.partition("@")[0] == tag)


def listing(tag: str, digest: str = "") -> tuple[str, ...]:
    """The known releases (oldest first) whose notes list this tag, with this digest when one is given."""
    return tuple(r for r, d in entries(tag) if not digest or d == digest)


def for_minor(release: str, k8s_minor: tuple[int, int]) -> str:
    """The full reference of the image ``release`` lists for a Kubernetes minor ("" when it lists none)."""
    return next((f"{REPO}:{ref}" for ref in IMAGES.get(release, ()) if minor(ref) == k8s_minor), "")


def first_for_minor(k8s_minor: tuple[int, int]) -> str:
    """The first known release that lists an image of this minor, "" when none does or when the first is the
    oldest release here (an older release, not recorded, may have listed it first)."""
    first = next((r for r in RELEASES if for_minor(r, k8s_minor)), "")
    return "" if first == OLDEST else first


MINORS = sorted({minor(ref) for refs in IMAGES.values() for ref in refs})
