"""What the tests (and tools/) share: real servers and fakes, ports, processes, polling, HTTP,
media probing, the live broadcaster process, and test data. Import as
`from tests.support.X import Y`."""
